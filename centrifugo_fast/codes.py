"""Catalogs of Centrifugo's reply errors, disconnects and unsubscribe codes.

Numbers, messages and reconnect rules follow the client protocol (spec/client-protocol.md §6).
No other module writes these numbers literally.
"""

from __future__ import annotations

from typing import NamedTuple


class ReplyError(NamedTuple):
    """An error answered to one command; the connection stays open."""

    code: int
    message: str
    temporary: bool = False


class Disconnect(NamedTuple):
    """Why a connection is closed; code 3000-3499 ask the client to reconnect."""

    code: int
    reason: str

    @property
    def reconnect(self) -> bool:
        """Whether the SDK reconnects after this code (by Centrifugo's code ranges)."""
        return not (3500 <= self.code <= 3999 or 4500 <= self.code <= 4999)


class Unsubscribe(NamedTuple):
    """A server-initiated unsubscribe; codes >= 2500 make the SDK resubscribe."""

    code: int
    reason: str


# Reply errors (lib errors.go).
ERROR_INTERNAL = ReplyError(100, "internal server error", True)
ERROR_UNAUTHORIZED = ReplyError(101, "unauthorized")
ERROR_UNKNOWN_CHANNEL = ReplyError(102, "unknown channel")
ERROR_PERMISSION_DENIED = ReplyError(103, "permission denied")
ERROR_METHOD_NOT_FOUND = ReplyError(104, "method not found")
ERROR_ALREADY_SUBSCRIBED = ReplyError(105, "already subscribed")
ERROR_LIMIT_EXCEEDED = ReplyError(106, "limit exceeded")
ERROR_BAD_REQUEST = ReplyError(107, "bad request")
ERROR_NOT_AVAILABLE = ReplyError(108, "not available")
ERROR_TOKEN_EXPIRED = ReplyError(109, "token expired")
ERROR_EXPIRED = ReplyError(110, "expired")
ERROR_TOO_MANY_REQUESTS = ReplyError(111, "too many requests", True)
ERROR_UNRECOVERABLE_POSITION = ReplyError(112, "unrecoverable position")
ERROR_CONCURRENT_PAGINATION = ReplyError(113, "concurrent pagination", True)

# Server API errors whose message differs from the client protocol's (apiproto errors.go).
API_ERROR_NOT_FOUND = ReplyError(104, "not found")
API_ERROR_CONFLICT = ReplyError(113, "conflict")

# Disconnects (lib disconnect.go). 3000 is a plain close: never sent as a code.
DISCONNECT_CONNECTION_CLOSED = Disconnect(3000, "connection closed")
DISCONNECT_SHUTDOWN = Disconnect(3001, "shutdown")
DISCONNECT_SERVER_ERROR = Disconnect(3004, "internal server error")
DISCONNECT_EXPIRED = Disconnect(3005, "connection expired")
DISCONNECT_SUB_EXPIRED = Disconnect(3006, "subscription expired")
DISCONNECT_SLOW = Disconnect(3008, "slow")
DISCONNECT_WRITE_ERROR = Disconnect(3009, "write error")
DISCONNECT_INSUFFICIENT_STATE = Disconnect(3010, "insufficient state")
DISCONNECT_FORCE_RECONNECT = Disconnect(3011, "force reconnect")
DISCONNECT_NO_PONG = Disconnect(3012, "no pong")
DISCONNECT_TOO_MANY_REQUESTS = Disconnect(3013, "too many requests")
DISCONNECT_STATE_INVALIDATED = Disconnect(3014, "state invalidated")
DISCONNECT_INVALID_TOKEN = Disconnect(3500, "invalid token")
DISCONNECT_BAD_REQUEST = Disconnect(3501, "bad request")
DISCONNECT_STALE = Disconnect(3502, "stale")
DISCONNECT_FORCE_NO_RECONNECT = Disconnect(3503, "force disconnect")
DISCONNECT_CONNECTION_LIMIT = Disconnect(3504, "connection limit")
DISCONNECT_CHANNEL_LIMIT = Disconnect(3505, "channel limit")
DISCONNECT_INAPPROPRIATE_PROTOCOL = Disconnect(3506, "inappropriate protocol")
DISCONNECT_PERMISSION_DENIED = Disconnect(3507, "permission denied")
DISCONNECT_NOT_AVAILABLE = Disconnect(3508, "not available")
DISCONNECT_TOO_MANY_ERRORS = Disconnect(3509, "too many errors")

# Unsubscribe push codes (lib unsubscribe.go). 0 and 1 are internal, never sent.
UNSUBSCRIBE_CLIENT = Unsubscribe(0, "client unsubscribed")
UNSUBSCRIBE_DISCONNECT = Unsubscribe(1, "client disconnected")
UNSUBSCRIBE_SERVER = Unsubscribe(2000, "server unsubscribe")
UNSUBSCRIBE_INSUFFICIENT_STATE = Unsubscribe(2500, "insufficient state")
UNSUBSCRIBE_EXPIRED = Unsubscribe(2501, "subscription expired")
UNSUBSCRIBE_STATE_INVALIDATED = Unsubscribe(2502, "state invalidated")
