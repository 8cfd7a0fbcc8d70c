"""WebSocket opening handshake, sans I/O (RFC 6455 §4.2; design.md §10 status codes).

`negotiate` takes the parsed request and a policy and returns either an Accepted (with the
101 response bytes and what was negotiated: subprotocol, permessage-deflate) or a Rejected
(with the error response bytes).
"""

from __future__ import annotations

import binascii
import fnmatch
import hashlib
from dataclasses import dataclass
from urllib.parse import parse_qs

from .deflate import DeflateConfig, DeflateParams, negotiate as negotiate_deflate
from .http11 import render_response, text_response

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key."""
    digest = hashlib.sha1(key.encode("ascii") + _GUID).digest()
    return binascii.b2a_base64(digest, newline=False).decode("ascii")


def origin_allowed(origin: str | None, patterns: list[str] | tuple[str, ...]) -> bool:
    """No Origin header passes; an Origin passes only if it matches a glob pattern."""
    if origin is None:
        return True
    origin = origin.lower()
    return any(fnmatch.fnmatchcase(origin, p.lower()) for p in patterns)


@dataclass(frozen=True, slots=True)
class HandshakePolicy:
    """Per-listener handshake rules."""

    allowed_origins: tuple[str, ...] = ()
    #: Subprotocols the server may echo, in preference order.
    subprotocols: tuple[str, ...] = ()
    check_origin: bool = True
    #: permessage-deflate (RFC 7692) for this listener; None or disabled: never negotiated.
    deflate: DeflateConfig | None = None


@dataclass(frozen=True, slots=True)
class Accepted:
    """The handshake succeeded."""

    response: bytes
    subprotocol: str | None
    query: dict[str, list[str]]
    #: The negotiated permessage-deflate parameters; None when not negotiated.
    deflate: DeflateParams | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """The handshake failed; send `response` and close."""

    status: int
    response: bytes
    reason: str


def _tokens(value: str | None) -> list[str]:
    return [t.strip().lower() for t in (value or "").split(",") if t.strip()]


def _has_token(value: str | None, token: str) -> bool:
    """`token` (lower-case) is one of the comma-separated tokens of a header value."""
    if value is None:
        return False
    value = value.lower()
    # Nearly every client sends exactly one token: skip the split for it.
    return value.strip() == token or token in _tokens(value)


def _valid_key(key: str) -> bool:
    """A Sec-WebSocket-Key is base64 of exactly 16 bytes (RFC 6455 §4.2.1)."""
    if len(key) != 24 or not key.isascii():
        return False
    try:
        return len(binascii.a2b_base64(key, strict_mode=True)) == 16
    except binascii.Error:
        return False


#: The fixed start of every 101 response; what follows depends on the request.
_ACCEPT_HEAD = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: "
)


def _reject(status: int, reason: str, extra: list[tuple[str, str]] | None = None) -> Rejected:
    if extra:
        body = (reason + "\n").encode()
        headers = [("Content-Type", "text/plain; charset=utf-8"), *extra]
        response = render_response(status, headers, body, keep_alive=False)
    else:
        response = text_response(status, reason, keep_alive=False)
    return Rejected(status, response, reason)


def negotiate(
    method: str, query: str, headers: dict[str, str], policy: HandshakePolicy
) -> Accepted | Rejected:
    """Validate an upgrade request (`headers` keys lower-case) against `policy`."""
    if method != "GET":
        return _reject(405, "method not allowed", [("Allow", "GET")])
    if policy.check_origin and not origin_allowed(headers.get("origin"), policy.allowed_origins):
        return _reject(403, "request origin not allowed")
    if not _has_token(headers.get("connection"), "upgrade"):
        return _reject(400, "missing Connection: upgrade header")
    if not _has_token(headers.get("upgrade"), "websocket"):
        return _reject(400, "missing Upgrade: websocket header")
    if headers.get("sec-websocket-version", "").strip() != "13":
        return _reject(400, "unsupported WebSocket version", [("Sec-WebSocket-Version", "13")])
    key = headers.get("sec-websocket-key", "").strip()
    if not _valid_key(key):
        return _reject(400, "invalid Sec-WebSocket-Key header")
    offered_header = headers.get("sec-websocket-protocol")
    subprotocol = None
    if offered_header is not None:
        offered = _tokens(offered_header)
        subprotocol = next((p for p in policy.subprotocols if p in offered), None)
    # The response is assembled as bytes: it is sent once per connection, and rendering it
    # through render_response showed in connect-storm profiles.
    parts = [_ACCEPT_HEAD, accept_key(key).encode("ascii")]
    if subprotocol is not None:
        parts.append(b"\r\nSec-WebSocket-Protocol: " + subprotocol.encode("latin-1"))
    params = None
    agreed = negotiate_deflate(headers.get("sec-websocket-extensions"), policy.deflate)
    if agreed is not None:
        params, extensions = agreed
        parts.append(b"\r\nSec-WebSocket-Extensions: " + extensions.encode("latin-1"))
    parts.append(b"\r\n\r\n")
    return Accepted(b"".join(parts), subprotocol, parse_qs(query) if query else {}, params)
