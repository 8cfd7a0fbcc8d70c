"""WebSocket handshake negotiation, sans I/O."""

from __future__ import annotations

import pytest

from centrifugo_fast.protocol.handshake import (
    Accepted,
    HandshakePolicy,
    Rejected,
    accept_key,
    negotiate,
    origin_allowed,
)

GOOD = {
    "connection": "keep-alive, Upgrade",
    "upgrade": "WebSocket",
    "sec-websocket-version": "13",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
}
POLICY = HandshakePolicy(subprotocols=("centrifuge-json", "centrifuge-protobuf"))


def test_rfc_example_accept_key() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_accepts_and_echoes_subprotocol() -> None:
    verdict = negotiate(
        "GET", "format=x", {**GOOD, "sec-websocket-protocol": "a, centrifuge-json"}, POLICY
    )
    assert isinstance(verdict, Accepted)
    assert verdict.subprotocol == "centrifuge-json"
    assert verdict.query == {"format": ["x"]}
    assert verdict.response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in verdict.response
    assert b"Sec-WebSocket-Protocol: centrifuge-json\r\n" in verdict.response
    assert b"Content-Length" not in verdict.response


@pytest.mark.parametrize(
    ("method", "change", "status"),
    [
        ("POST", {}, 405),
        ("GET", {"origin": "https://x.com"}, 403),
        ("GET", {"connection": "keep-alive"}, 400),
        ("GET", {"upgrade": "h2c"}, 400),
        ("GET", {"sec-websocket-version": "8"}, 400),
        ("GET", {"sec-websocket-key": "abc"}, 400),
    ],
)
def test_rejections(method: str, change: dict[str, str], status: int) -> None:
    verdict = negotiate(method, "", {**GOOD, **change}, POLICY)
    assert isinstance(verdict, Rejected) and verdict.status == status
    assert verdict.response.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"Connection: close" in verdict.response


def test_version_rejection_advertises_13() -> None:
    verdict = negotiate("GET", "", {**GOOD, "sec-websocket-version": "8"}, POLICY)
    assert isinstance(verdict, Rejected)
    assert b"Sec-WebSocket-Version: 13\r\n" in verdict.response


@pytest.mark.parametrize(
    ("origin", "patterns", "allowed"),
    [
        (None, (), True),
        ("https://a.com", (), False),
        ("https://a.com", ("*",), True),
        ("https://app.example.com", ("https://*.example.com",), True),
        ("HTTPS://APP.EXAMPLE.COM", ("https://*.example.com",), True),
        ("https://example.com.evil.org", ("https://*.example.com",), False),
        ("http://localhost:3000", ("http://localhost:*",), True),
    ],
)
def test_origin_globs(origin: str | None, patterns: tuple[str, ...], allowed: bool) -> None:
    assert origin_allowed(origin, patterns) is allowed
