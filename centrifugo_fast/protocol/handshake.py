"""WebSocket opening handshake, sans I/O (RFC 6455 §4.2; design.md §10 status codes).

`negotiate` takes the parsed request and a policy and returns either an Accepted (with the
101 response bytes and what was negotiated: subprotocol, permessage-deflate) or a Rejected
(with the error response bytes).
"""

from __future__ import annotations

import base64
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
    return base64.b64encode(digest).decode("ascii")


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
    if "upgrade" not in _tokens(headers.get("connection")):
        return _reject(400, "missing Connection: upgrade header")
    if "websocket" not in _tokens(headers.get("upgrade")):
        return _reject(400, "missing Upgrade: websocket header")
    if headers.get("sec-websocket-version", "").strip() != "13":
        return _reject(400, "unsupported WebSocket version", [("Sec-WebSocket-Version", "13")])
    key = headers.get("sec-websocket-key", "").strip()
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError("key must decode to 16 bytes")
    except (binascii.Error, ValueError):
        return _reject(400, "invalid Sec-WebSocket-Key header")
    offered = _tokens(headers.get("sec-websocket-protocol"))
    subprotocol = next((p for p in policy.subprotocols if p in offered), None)
    response_headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_key(key)),
    ]
    if subprotocol is not None:
        response_headers.append(("Sec-WebSocket-Protocol", subprotocol))
    params = None
    agreed = negotiate_deflate(headers.get("sec-websocket-extensions"), policy.deflate)
    if agreed is not None:
        params, extensions = agreed
        response_headers.append(("Sec-WebSocket-Extensions", extensions))
    response = render_response(101, response_headers, content_length=False)
    return Accepted(response, subprotocol, parse_qs(query), params)
