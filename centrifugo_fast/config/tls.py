"""Checks of the TLS options (`http_server.tls`, `internal_tls`, `tls_autocert`), run by the
loader so `checkconfig` reports a bad certificate or address before a server starts."""

from __future__ import annotations

from ..errors import ConfigError
from .pem import load_pem
from .schema import Config, TLSAutocertConfig, TLSConfig


def parse_http_addr(
    value: str, option: str = "http_server.tls_autocert.http_addr"
) -> tuple[str, int]:
    """(host, port) of an address such as ":80", "127.0.0.1:8080" or "[::1]:80"."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{option}: invalid address {value!r} (use host:port or :port)")
    return host.strip("[]"), int(port)


def check_autocert(cfg: TLSAutocertConfig) -> None:
    """Raise ConfigError when autocert is enabled with settings it cannot work with."""
    if not cfg.enabled:
        return
    where = "http_server.tls_autocert"
    if not cfg.host_whitelist and not cfg.server_name:
        raise ConfigError(
            f"{where}.host_whitelist (or server_name) must name the hosts to certify: "
            "certificates are never requested for arbitrary names"
        )
    if not cfg.http:
        raise ConfigError(
            f"{where}.http must be true: certificates are obtained with the HTTP-01 challenge "
            f"(a listener on {where}.http_addr, port 80 by default)"
        )
    parse_http_addr(cfg.http_addr)
    if not cfg.directory_url.startswith(("https://", "http://")):
        raise ConfigError(f"{where}.directory_url must be an http(s) URL")
    if cfg.renew_before <= 0:
        raise ConfigError(f"{where}.renew_before must be positive")
    if cfg.directory_ca_pem:
        load_pem(cfg.directory_ca_pem, f"{where}.directory_ca_pem")


def _check_tls(tls: TLSConfig, where: str) -> None:
    if not tls.enabled:
        return
    if not tls.cert_pem or not tls.key_pem:
        raise ConfigError(f"{where}: cert_pem and key_pem are required when TLS is enabled")
    for name in ("cert_pem", "key_pem", "client_ca_pem"):
        value = getattr(tls, name)
        if value:
            load_pem(value, f"{where}.{name}")


def validate_tls(config: Config) -> None:
    """Every enabled TLS option of the listeners loads (PEM values, addresses)."""
    cfg = config.http_server
    check_autocert(cfg.tls_autocert)
    if not cfg.tls_autocert.enabled:
        _check_tls(cfg.tls, "http_server.tls")
    _check_tls(cfg.internal_tls, "http_server.internal_tls")
