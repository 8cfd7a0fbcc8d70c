"""Configuration of the operations options: TLS objects, autocert, health, metrics, logs."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from centrifugo_fast.cli import JsonFormatter
from centrifugo_fast.config import load_config
from centrifugo_fast.config.pem import load_pem
from centrifugo_fast.config.tls import parse_http_addr
from centrifugo_fast.errors import ConfigError
from tests.tlsutil import TestCA

PEM = TestCA().cert_pem


def _load(tmp_path: Path, data: dict[str, Any]) -> Any:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return load_config(path, environ={})


def test_pem_as_text_base64_or_path(tmp_path: Path) -> None:
    assert load_pem(PEM.decode(), "x") == PEM
    assert load_pem(base64.b64encode(PEM).decode(), "x") == PEM
    (tmp_path / "ca.pem").write_bytes(PEM)
    assert load_pem(str(tmp_path / "ca.pem"), "x") == PEM
    (tmp_path / "not.pem").write_text("hello")
    with pytest.raises(ConfigError, match="x: file .* does not hold PEM data"):
        load_pem(str(tmp_path / "not.pem"), "x")
    with pytest.raises(ConfigError, match="x: not PEM text, base64-encoded PEM or the path"):
        load_pem("aGVsbG8=", "x")


def test_defaults_match_centrifugo(tmp_path: Path) -> None:
    config, warnings = _load(tmp_path, {})
    assert warnings == []
    assert config.health.handler_prefix == "/health"
    assert config.prometheus.handler_prefix == "/metrics"
    assert config.http_server.tls_autocert.http_addr == ":80"
    assert config.log.format == "text"


def test_ops_options_are_supported_now(tmp_path: Path) -> None:
    issued = TestCA().issue("localhost")
    _, warnings = _load(
        tmp_path,
        {
            "health": {"enabled": True},
            "prometheus": {"enabled": True, "instrument_http_handlers": True},
            "http_server": {
                "tls": {
                    "enabled": True,
                    "cert_pem": issued.cert_pem.decode(),
                    "key_pem": issued.key_pem.decode(),
                },
                "tls_external": True,
            },
        },
    )
    assert warnings == [
        "config option prometheus.instrument_http_handlers is not supported yet and has no effect"
    ]


@pytest.mark.parametrize(
    ("autocert", "message"),
    [
        ({"http": True}, "host_whitelist .* must name the hosts"),
        ({"host_whitelist": ["a.example"]}, "tls_autocert.http must be true"),
        ({"host_whitelist": ["a.example"], "http": True, "http_addr": "80"}, "invalid address"),
        (
            {"host_whitelist": ["a.example"], "http": True, "directory_url": "ftp://x"},
            "directory_url must be an http",
        ),
        (
            {"host_whitelist": ["a.example"], "http": True, "directory_ca_pem": "nope"},
            "directory_ca_pem: not PEM",
        ),
    ],
)
def test_bad_autocert_is_refused(tmp_path: Path, autocert: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, {"http_server": {"tls_autocert": {"enabled": True, **autocert}}})


def test_v5_tls_names_are_upgraded(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_bytes(PEM)
    config, warnings = _load(
        tmp_path,
        {
            "tls_autocert": True,
            "tls_autocert_host_whitelist": "a.example, b.example",
            "tls_autocert_http": True,
            "prometheus": True,
            "health_handler_prefix": "/healthz",
        },
    )
    autocert = config.http_server.tls_autocert
    assert autocert.enabled and autocert.http
    assert autocert.host_whitelist == ["a.example", "b.example"]
    assert config.prometheus.enabled and config.health.handler_prefix == "/healthz"
    assert any("tls_autocert_host_whitelist is a Centrifugo v5 name" in w for w in warnings)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(":80", ("", 80)), ("127.0.0.1:8080", ("127.0.0.1", 8080)), ("[::1]:443", ("::1", 443))],
)
def test_http_addr(value: str, expected: tuple[str, int]) -> None:
    assert parse_http_addr(value) == expected


def test_log_format_and_prefixes_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="log.format must be text or json"):
        _load(tmp_path, {"log": {"format": "xml"}})
    with pytest.raises(ConfigError, match="prometheus.handler_prefix must be empty or start"):
        _load(tmp_path, {"prometheus": {"handler_prefix": "metrics"}})


def test_json_log_lines() -> None:
    record = logging.LogRecord("centrifugo_fast.x", logging.WARNING, "f", 1, "a %s", ("b",), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "warn" and entry["message"] == "a b"
    assert entry["logger"] == "centrifugo_fast.x" and entry["time"].endswith("Z")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["error"]
