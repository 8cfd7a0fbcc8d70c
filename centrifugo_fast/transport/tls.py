"""TLS for the listeners: `http_server.tls`, `internal_tls` and which listener gets which.

As in Centrifugo: the TLS (or autocert) context serves every listener unless
`http_server.tls_external` limits it to the client listener; `internal_tls`, when enabled,
is the internal listener's own. TLS 1.2 is the minimum; `client_ca_pem` turns on mutual TLS.
"""

from __future__ import annotations

import os
import ssl
import tempfile

from ..config.pem import load_pem
from ..config.schema import Config, TLSConfig
from ..errors import ConfigError

#: Only HTTP/1.1 is served; announcing it lets ALPN clients settle without guessing.
ALPN = ["http/1.1"]


def base_context() -> ssl.SSLContext:
    """A server context with this server's protocol floor and ALPN."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(ALPN)
    return ctx


def load_chain(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes, option: str) -> None:
    """Load a certificate chain and its key given as bytes into `ctx`.

    The ssl module reads them only from files: they go to a private directory (mode 0700,
    files 0600) that is removed as soon as they are loaded.
    """
    with tempfile.TemporaryDirectory(prefix="cf-fast-tls-") as directory:
        cert_path = os.path.join(directory, "cert.pem")
        key_path = os.path.join(directory, "key.pem")
        for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        try:
            ctx.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            raise ConfigError(f"{option}: certificate and key do not load: {exc}") from exc


def server_context(tls: TLSConfig, option: str) -> ssl.SSLContext:
    """The listener context of a TLS object (`option` names it in errors)."""
    if not tls.cert_pem or not tls.key_pem:
        raise ConfigError(f"{option}: cert_pem and key_pem are required when TLS is enabled")
    ctx = base_context()
    cert = load_pem(tls.cert_pem, f"{option}.cert_pem")
    key = load_pem(tls.key_pem, f"{option}.key_pem")
    load_chain(ctx, cert, key, option)
    if tls.client_ca_pem:
        ca = load_pem(tls.client_ca_pem, f"{option}.client_ca_pem")
        try:
            ctx.load_verify_locations(cadata=ca.decode("ascii", "replace"))
        except ssl.SSLError as exc:
            raise ConfigError(f"{option}.client_ca_pem: {exc}") from exc
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def listener_contexts(
    config: Config, main: ssl.SSLContext | None, separate_internal: bool
) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
    """(client listener, internal listener) contexts; `main` is the TLS or autocert one."""
    cfg = config.http_server
    internal: ssl.SSLContext | None = None
    if separate_internal:
        if cfg.internal_tls.enabled:
            internal = server_context(cfg.internal_tls, "http_server.internal_tls")
        elif not cfg.tls_external:
            internal = main
    return main, internal
