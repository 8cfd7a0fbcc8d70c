"""Automatic certificates end to end: Let's Encrypt's pebble test CA issues a certificate over
ACME (HTTP-01), the server serves it, and a TLS WebSocket client speaks Centrifugo through it.

pebble-challtestsrv answers pebble's DNS queries (every name -> 127.0.0.1), so the test uses a
realistic host name without touching the machine's resolver.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import stat
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from websockets.sync.client import connect as ws_connect

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import API_KEY, BASE_CONFIG, SECRET, ServerProcess, free_port, merge, require
from tests.tlsutil import TestCA

HOST = "realtime.centrifugo-fast.test"
DEFAULT_TOOLS = Path(__file__).resolve().parents[2] / "build" / "tools"


def _tool(env: str, name: str) -> str:
    """The path of an outside program: $env, else build/tools/*/name, else PATH."""
    path = os.environ.get(env) or next(
        (str(p) for p in sorted(DEFAULT_TOOLS.glob(f"*/{name}")) if p.is_file()), None
    )
    path = path or shutil.which(name)
    require(path is not None and os.access(path, os.X_OK), f"{name} is not installed")
    assert path is not None
    return path


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what} exited with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on {port}")


@dataclass
class Pebble:
    """A running pebble: its ACME directory, the CA its HTTPS uses, and its issuing root."""

    directory: str
    https_ca: TestCA
    root_pem: bytes
    http_port: int

    def client_context(self) -> ssl.SSLContext:
        """A TLS client context trusting only certificates pebble issues."""
        return ssl.create_default_context(cadata=self.root_pem.decode())


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    """pebble and pebble-challtestsrv on free loopback ports."""
    pebble_bin = _tool("PEBBLE_BIN", "pebble")
    challtestsrv_bin = _tool("CHALLTESTSRV_BIN", "pebble-challtestsrv")
    work = tmp_path_factory.mktemp("pebble")
    https_ca = TestCA("pebble HTTPS test CA")
    issued = https_ca.issue("127.0.0.1", "localhost")
    (work / "cert.pem").write_bytes(issued.cert_pem)
    (work / "key.pem").write_bytes(issued.key_pem)
    acme_port, management_port, dns_port, dns_management = (free_port() for _ in range(4))
    http_port = free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{acme_port}",
            "managementListenAddress": f"127.0.0.1:{management_port}",
            "certificate": str(work / "cert.pem"),
            "privateKey": str(work / "key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "domainBlocklist": ["blocked.centrifugo-fast.test"],
            "retryAfter": {"authz": 1, "order": 1},
            "profiles": {"default": {"description": "90 days", "validityPeriod": 7776000}},
        }
    }
    (work / "pebble.json").write_text(json.dumps(config))
    logs = (work / "challtestsrv.log").open("wb"), (work / "pebble.log").open("wb")
    dns = subprocess.Popen(
        [
            challtestsrv_bin,
            *("-dnsserver", f"127.0.0.1:{dns_port}"),
            *("-management", f"127.0.0.1:{dns_management}"),
            *("-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", ""),
            *("-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""),
        ],
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    env = dict(os.environ, PEBBLE_VA_NOSLEEP="1", PEBBLE_WFE_NONCEREJECT="0")
    ca = subprocess.Popen(
        [
            pebble_bin,
            *("-config", str(work / "pebble.json")),
            *("-dnsserver", f"127.0.0.1:{dns_port}"),
        ],
        stdout=logs[1],
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        _wait_port(dns_management, dns, "pebble-challtestsrv")
        _wait_port(management_port, ca, "pebble")
        _wait_port(acme_port, ca, "pebble")
        management = https_ca.client_context()
        with urllib.request.urlopen(
            f"https://127.0.0.1:{management_port}/roots/0", context=management, timeout=10
        ) as response:
            root_pem = response.read()
        yield Pebble(f"https://127.0.0.1:{acme_port}/dir", https_ca, root_pem, http_port)
    finally:
        for proc in (ca, dns):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
        print((work / "pebble.log").read_text(errors="replace")[-4000:])  # shown on failure


def autocert_server(pebble: Pebble, cache: Path, **extra: Any) -> ServerProcess:
    """A server with automatic certificates for HOST from pebble."""
    autocert = {
        "enabled": True,
        "host_whitelist": [HOST],
        "cache_dir": str(cache),
        "email": "ops@centrifugo-fast.test",
        "http": True,
        "http_addr": f"127.0.0.1:{pebble.http_port}",
        "directory_url": pebble.directory,
        "directory_ca_pem": pebble.https_ca.cert_pem.decode(),
        **extra,
    }
    config = merge(BASE_CONFIG, {"http_server": {"tls_autocert": autocert}})
    return ServerProcess(config).start()


def served_certificate(port: int, ctx: ssl.SSLContext, name: str = HOST) -> x509.Certificate:
    """The certificate the server presents for `name` (verified against `ctx`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname=name) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def wait_certificate(
    server: ServerProcess, ctx: ssl.SSLContext, differs_from: int | None = None
) -> x509.Certificate:
    """Poll handshakes until a valid certificate (other than serial `differs_from`) is served."""
    deadline = time.monotonic() + 60
    last: Exception | None = None
    while time.monotonic() < deadline:
        assert server.alive(), server.output()
        try:
            cert = served_certificate(server.port, ctx)
            if cert.serial_number != differs_from:
                return cert
        except (ssl.SSLError, OSError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"no certificate served ({last}):\n{server.output()[-3000:]}")


def centrifugo_over_wss(port: int, ctx: ssl.SSLContext) -> dict[str, Any]:
    """Connect, subscribe and receive a publication over wss:// with SNI = HOST."""
    url = f"wss://127.0.0.1:{port}/connection/websocket"
    with ws_connect(
        url, ssl=ctx, server_hostname=HOST, open_timeout=10, additional_headers={"Host": HOST}
    ) as ws:
        token = make_token(SECRET, "alice", 600)
        ws.send(json.dumps({"id": 1, "connect": {"token": token}}))
        connect = json.loads(ws.recv(timeout=5))
        ws.send(json.dumps({"id": 2, "subscribe": {"channel": "news"}}))
        assert json.loads(ws.recv(timeout=5)) == {"id": 2, "subscribe": {}}
        body = json.dumps({"channel": "news", "data": {"over": "tls"}}).encode()
        api_over_tls(port, ctx, "/api/publish", body)
        push = json.loads(ws.recv(timeout=5))
    result: dict[str, Any] = {"connect": connect["connect"], "push": push["push"]}
    return result


def api_over_tls(port: int, ctx: ssl.SSLContext, path: str, body: bytes) -> None:
    """POST to the server API through TLS with SNI = HOST (urllib would send the IP)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nX-API-Key: {API_KEY}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with ctx.wrap_socket(sock, server_hostname=HOST) as tls:
            tls.sendall(head + body)
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer


def test_obtains_a_certificate_and_serves_wss(pebble: Pebble, tmp_path: Path) -> None:
    cache = tmp_path / "certs"
    server = autocert_server(pebble, cache)
    try:
        ctx = pebble.client_context()
        cert = wait_certificate(server, ctx)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == [HOST]
        result = centrifugo_over_wss(server.port, ctx)
        assert result["connect"]["client"]
        assert result["push"] == {"channel": "news", "pub": {"data": {"over": "tls"}}}
        # A name outside the whitelist gets no certificate (and no ACME order).
        with pytest.raises(ssl.SSLError):
            served_certificate(server.port, ctx, "other.centrifugo-fast.test")
        # The challenge listener sends everything else to HTTPS.
        with socket.create_connection(("127.0.0.1", pebble.http_port), timeout=5) as sock:
            sock.sendall(f"GET /x?y=1 HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            head = sock.recv(4096).decode()
        assert head.startswith("HTTP/1.1 302") and f"Location: https://{HOST}/x?y=1" in head
    finally:
        server.close()
    # The cache: the account key and the certificate, private to the server's user.
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    for name in ("acme_account+key", HOST):
        assert stat.S_IMODE((cache / name).stat().st_mode) == 0o600, name
    assert b"PRIVATE KEY" in (cache / HOST).read_bytes()

    # A restart serves the cached certificate: no new order.
    again = autocert_server(pebble, cache)
    try:
        assert wait_certificate(again, ctx).serial_number == cert.serial_number
        assert "loaded from" in again.output()
        assert "requesting a certificate" not in again.output()
    finally:
        again.close()

    # Renewal: with renew_before longer than the remaining validity the cached certificate
    # is due, so the running server gets a new one (same account) and serves it at once.
    renewing = autocert_server(pebble, cache, renew_before="2400h")
    try:
        renewed = wait_certificate(renewing, ctx, differs_from=cert.serial_number)
        assert renewed.not_valid_after_utc >= cert.not_valid_after_utc
        assert centrifugo_over_wss(renewing.port, ctx)["push"]["pub"]["data"] == {"over": "tls"}
    finally:
        renewing.close()
    assert _serial_of_cached(cache / HOST) == renewed.serial_number


def _serial_of_cached(path: Path) -> int:
    data = path.read_bytes()
    return x509.load_pem_x509_certificate(
        data[data.index(b"-----BEGIN CERTIFICATE-----") :]
    ).serial_number
