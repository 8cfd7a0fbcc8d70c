"""Automatic TLS certificates from an ACME CA (Let's Encrypt): `http_server.tls_autocert`.

The ACME protocol is certbot's `acme` package (maintained by the EFF with certbot, RFC 8555,
with `josepy` for JOSE). Its calls block on HTTP, so each runs in a worker thread while the
event loop keeps serving clients and the HTTP-01 challenge.

How it works:
  * the names to certify are `host_whitelist` (or `server_name`), known at startup: a
    certificate is obtained for each one ahead of time, never during a TLS handshake (whose
    SNI callback cannot wait), and never for a name outside the list;
  * challenges are HTTP-01, answered by a plain listener on `http_addr` (`http: true`;
    Centrifugo's other challenge, TLS-ALPN-01, is not offered by the ACME library);
  * certificates (key, then chain, per name) and the ACME account key are kept in
    `cache_dir` (0700 directory, 0600 files), so a restart reuses them;
  * one task checks every `CHECK_INTERVAL` (and after failures, with a backoff) and renews
    what expires within `renew_before`; handshakes switch to the new certificate at once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .._version import __version__
from ..config.pem import load_pem
from ..config.schema import TLSAutocertConfig
from ..config.tls import check_autocert
from ..errors import ConfigError
from ..protocol.http11 import render_response, text_response
from .http import Request
from .tls import base_context, load_chain

logger = logging.getLogger("centrifugo_fast.autocert")

#: How often certificates are checked for renewal when nothing failed.
CHECK_INTERVAL = 12 * 3600.0
#: First retry delay after a failed issuance; doubles up to CHECK_INTERVAL.
RETRY_DELAY = 30.0
#: How long one order may take (challenge validation and finalization).
ORDER_TIMEOUT = 120.0
#: The account key's file in cache_dir.
ACCOUNT_KEY_FILE = "acme_account+key"
CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


T = TypeVar("T")


async def _in_thread(call: Callable[..., T], *args: Any) -> T:
    """Run a blocking ACME call in a daemon thread.

    Not the loop's default executor: its threads are joined when the process exits, so a
    request hanging on the network (up to the client's 45 s timeout) would hold up a
    shutdown; a daemon thread is simply abandoned.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = call(*args)
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="acme", daemon=True).start()
    return await future


def _not_after(chain_pem: bytes) -> float:
    """Unix time when the first certificate of a PEM chain expires."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(chain_pem)
    return cert.not_valid_after_utc.timestamp()


def _split_cached(data: bytes) -> tuple[bytes, bytes]:
    """(key PEM, chain PEM) of a cache file holding the key followed by the chain."""
    marker = b"-----BEGIN CERTIFICATE-----"
    at = data.find(marker)
    if at <= 0:
        raise ValueError("no private key before the certificate chain")
    return data[:at], data[at:]


class Autocert:
    """Certificates for the whitelisted names, the listener context that serves them, and
    the HTTP-01 challenge responder."""

    def __init__(self, cfg: TLSAutocertConfig) -> None:
        check_autocert(cfg)
        self.cfg = cfg
        self.hosts = [h.lower() for h in (cfg.host_whitelist or [cfg.server_name])]
        #: The name served to clients that send no SNI (connecting by IP address).
        self.fallback = (cfg.server_name or self.hosts[0]).lower()
        self.cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else None
        #: Per-name contexts holding the current certificate; the SNI callback picks one.
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._expires: dict[str, float] = {}
        #: HTTP-01 challenge path -> key authorization, while an order is pending.
        self._challenges: dict[str, bytes] = {}
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ca_file: str | None = None
        #: Set each time a certificate is installed (tests and startup logs wait on it).
        self.installed = asyncio.Event()
        self.context = base_context()
        self.context.sni_callback = self._select
        if self.cache_dir is None:
            logger.warning(
                "http_server.tls_autocert.cache_dir is empty: certificates are requested "
                "again after every restart (ACME CAs rate-limit that)"
            )

    # ---- TLS handshakes ----

    def _select(
        self, sslobj: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext
    ) -> int | None:
        """SNI callback: serve the name's certificate; refuse names not in the whitelist."""
        name = (server_name or self.fallback).lower()
        ctx = self._contexts.get(name)
        if ctx is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sslobj.context = ctx
        return None

    def certificate_expiry(self, host: str) -> float | None:
        """Unix time the current certificate of `host` expires (None: none yet)."""
        return self._expires.get(host.lower())

    # ---- HTTP-01 ----

    async def http01(self, request: Request) -> bytes:
        """The challenge listener: key authorizations, and a redirect to HTTPS otherwise."""
        answer = self._challenges.get(request.path)
        if answer is not None:
            return render_response(200, [("Content-Type", "text/plain")], answer)
        if request.path.startswith(CHALLENGE_PREFIX):
            return text_response(404)
        host = request.headers.get("host", "").rsplit(":", 1)[0].lower()
        if request.method in ("GET", "HEAD") and host in self.hosts:
            target = f"https://{host}{request.path}" + (
                f"?{request.query}" if request.query else ""
            )
            return render_response(302, [("Location", target)])
        return text_response(400, "use HTTPS")

    # ---- lifecycle ----

    async def start(self) -> None:
        """Load cached certificates and start obtaining or renewing the others."""
        if self.cache_dir is not None:
            self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            for host in self.hosts:
                self._load_cached(host)
        if self.cfg.directory_ca_pem:
            self._ca_file = self._write_private(
                load_pem(self.cfg.directory_ca_pem, "http_server.tls_autocert.directory_ca_pem")
            )
        self._task = asyncio.get_running_loop().create_task(self._maintain())

    async def close(self) -> None:
        """Stop renewing; remove temporary files."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._ca_file is not None:
            try:
                os.unlink(self._ca_file)
            except FileNotFoundError:
                pass
            self._ca_file = None

    def _due(self, now: float) -> list[str]:
        renew_before = float(self.cfg.renew_before)
        return [h for h in self.hosts if self._expires.get(h, 0.0) - renew_before <= now]

    async def _maintain(self) -> None:
        delay = RETRY_DELAY
        while True:
            failed = False
            for host in self._due(_now()):
                try:
                    await self._obtain(host)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failed = True
                    self._client = None  # start over: directory, nonces, account
                    logger.error("certificate for %s not obtained: %s", host, str(exc) or repr(exc))
            if failed:
                await asyncio.sleep(delay)
                delay = min(delay * 2, CHECK_INTERVAL)
            else:
                delay = RETRY_DELAY
                await asyncio.sleep(CHECK_INTERVAL)

    # ---- cache ----

    def _cache_path(self, name: str) -> Path | None:
        return self.cache_dir / name if self.cache_dir is not None else None

    def _load_cached(self, host: str) -> None:
        path = self._cache_path(host)
        if path is None or not path.is_file():
            return
        try:
            key_pem, chain_pem = _split_cached(path.read_bytes())
            self._install(host, chain_pem, key_pem)
        except (OSError, ValueError, ConfigError) as exc:
            logger.warning("cached certificate %s not usable, requesting a new one: %s", path, exc)
            return
        logger.info("certificate for %s loaded from %s", host, path)

    def _store(self, name: str, data: bytes) -> None:
        path = self._cache_path(name)
        if path is None:
            return
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # atomic: a crash never leaves half a certificate

    def _write_private(self, data: bytes) -> str:
        fd, path = tempfile.mkstemp(prefix="cf-fast-acme-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return path

    def _install(self, host: str, chain_pem: bytes, key_pem: bytes) -> None:
        ctx = base_context()
        load_chain(ctx, chain_pem, key_pem, f"certificate of {host}")
        self._contexts[host] = ctx
        self._expires[host] = _not_after(chain_pem)
        self.installed.set()

    # ---- ACME ----

    def _account_key(self) -> Any:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        path = self._cache_path(ACCOUNT_KEY_FILE)
        if path is not None and path.is_file():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(key, ec.EllipticCurvePrivateKey):
                return key
            logger.warning("%s is not an EC key; creating a new ACME account key", path)
        key = ec.generate_private_key(ec.SECP256R1())
        self._store(
            ACCOUNT_KEY_FILE,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
        )
        return key

    def _make_client(self) -> Any:
        """Directory, account key and account (created, or found by its key). Blocking."""
        from acme import client, errors, messages
        from josepy.jwa import ES256
        from josepy.jwk import JWKEC

        net = client.ClientNetwork(
            JWKEC(key=self._account_key()),
            alg=ES256,
            verify_ssl=self._ca_file or True,  # type: ignore[arg-type]
            user_agent=f"centrifugo-fast/{__version__} acme-python",
        )
        directory = client.ClientV2.get_directory(self.cfg.directory_url, net)
        acme = client.ClientV2(directory, net=net)
        registration = messages.NewRegistration.from_data(
            email=self.cfg.email or None, terms_of_service_agreed=True
        )
        try:
            acme.new_account(registration)
        except errors.ConflictError as exc:
            # The key already has an account: use it.
            acme.query_registration(
                messages.RegistrationResource(uri=exc.location, body=messages.Registration())
            )
        return acme

    async def _obtain(self, host: str) -> None:
        from acme import challenges, crypto_util, messages
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        if self._client is None:
            self._client = await _in_thread(self._make_client)
        acme = self._client
        logger.info("requesting a certificate for %s from %s", host, self.cfg.directory_url)
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        csr = crypto_util.make_csr(key_pem, [host])
        order = await _in_thread(acme.new_order, csr)
        paths = []
        try:
            for authz in order.authorizations:
                if authz.body.status == messages.STATUS_VALID:
                    continue  # validated recently for this account
                challenge = next(
                    (c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)),
                    None,
                )
                if challenge is None:
                    raise RuntimeError(f"the CA offers no HTTP-01 challenge for {host}")
                response, validation = challenge.response_and_validation(acme.net.key)
                path = challenge.chall.path
                self._challenges[path] = validation.encode()
                paths.append(path)
                await _in_thread(acme.answer_challenge, challenge, response)
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=ORDER_TIMEOUT)
            order = await _in_thread(acme.poll_and_finalize, order, deadline)
        finally:
            for path in paths:
                self._challenges.pop(path, None)
        chain_pem = order.fullchain_pem.encode()
        self._install(host, chain_pem, key_pem)
        self._store(host, key_pem + chain_pem)
        expires = datetime.datetime.fromtimestamp(self._expires[host], datetime.UTC)
        logger.info("certificate for %s installed, valid until %s", host, expires.isoformat())


def _now() -> float:
    return datetime.datetime.now(datetime.UTC).timestamp()
