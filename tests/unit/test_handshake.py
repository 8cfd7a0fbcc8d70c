"""WebSocket handshake negotiation, sans I/O."""

from __future__ import annotations

import pytest

from centrifugo_fast.protocol.deflate import DeflateConfig, DeflateParams
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


# -- permessage-deflate ---------------------------------------------------------------------

DEFLATE_POLICY = HandshakePolicy(
    subprotocols=("centrifuge-json",), deflate=DeflateConfig(enabled=True, level=3, min_size=64)
)


def test_deflate_negotiated_and_announced() -> None:
    offer = "x-unknown, permessage-deflate; client_max_window_bits"
    verdict = negotiate("GET", "", {**GOOD, "sec-websocket-extensions": offer}, DEFLATE_POLICY)
    assert isinstance(verdict, Accepted)
    assert verdict.deflate == DeflateParams(level=3, min_size=64, server_max_window_bits=15)
    assert verdict.response.endswith(
        b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
        b"client_no_context_takeover\r\n\r\n"
    )


def test_deflate_window_bits_echoed() -> None:
    offer = (
        "permessage-deflate; server_max_window_bits=8, "
        "permessage-deflate; server_max_window_bits=10"
    )
    verdict = negotiate("GET", "", {**GOOD, "sec-websocket-extensions": offer}, DEFLATE_POLICY)
    assert isinstance(verdict, Accepted) and verdict.deflate is not None
    assert verdict.deflate.server_max_window_bits == 10
    assert b"; server_max_window_bits=10\r\n" in verdict.response


@pytest.mark.parametrize(
    ("policy", "offer"),
    [
        (POLICY, "permessage-deflate"),  # compression not configured
        (HandshakePolicy(deflate=DeflateConfig(enabled=False)), "permessage-deflate"),
        (DEFLATE_POLICY, None),  # nothing offered
        (DEFLATE_POLICY, "x-webkit-deflate-frame"),
        (DEFLATE_POLICY, "permessage-deflate; server_max_window_bits=8"),
        (DEFLATE_POLICY, "permessage-deflate; unknown_param"),
    ],
)
def test_deflate_not_negotiated(policy: HandshakePolicy, offer: str | None) -> None:
    headers = dict(GOOD)
    if offer is not None:
        headers["sec-websocket-extensions"] = offer
    verdict = negotiate("GET", "", headers, policy)
    assert isinstance(verdict, Accepted)
    assert verdict.deflate is None
    assert b"Sec-WebSocket-Extensions" not in verdict.response


def test_deflate_does_not_affect_rejections() -> None:
    headers = {
        **GOOD,
        "sec-websocket-version": "8",
        "sec-websocket-extensions": "permessage-deflate",
    }
    verdict = negotiate("GET", "", headers, DEFLATE_POLICY)
    assert isinstance(verdict, Rejected)
    assert b"Sec-WebSocket-Extensions" not in verdict.response
