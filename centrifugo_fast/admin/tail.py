"""Live tail: an admin WebSocket that streams one channel's publications as they happen.

The browser opens `{prefix}/admin/tail` and sends `{"token": "...", "channel": "..."}` (a
browser cannot set headers on a WebSocket, and a token in the URL would end up in logs).
Later `{"channel": "..."}` messages switch channels. The server answers with JSON text
messages: `subscribed`, `publication`, `dropped` (rate limit) and `error`.

The tail observes the channel through `Node.add_tap`, not as a subscriber: it never shows up
in presence, in `channels` or in the node's counts, and needs no channel permissions. With
the Redis engine the tap keeps the node subscribed to the channel, so publications made on
other nodes arrive too.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec

from ..codes import ReplyError
from ..core.eager import run_eagerly
from ..core.node import Node
from ..engine.types import Publication
from ..errors import ReplyErrorException
from ..protocol.frames import Opcode
from ..transport.websocket import WebSocketConnection
from .auth import AdminToken

logger = logging.getLogger("centrifugo_fast.admin")

#: Close codes (application range): bad or missing token, token expired or logged out.
CLOSE_UNAUTHORIZED = 4001
CLOSE_EXPIRED = 4002
CLOSE_BAD_REQUEST = 4003
CLOSE_SLOW = 4008
#: A tail must authenticate this soon after opening.
AUTH_TIMEOUT = 10.0
#: At most this many publications per second reach one tail; the rest are counted as dropped
#: (a browser list cannot show more, and the admin page must not slow the node down).
MAX_PER_SECOND = 100
PING_INTERVAL = 25.0

_encoder = msgspec.json.Encoder()
_validator = msgspec.json.Decoder()


class _Hello(msgspec.Struct, kw_only=True):
    token: str = ""
    channel: str = ""


_hello_decoder = msgspec.json.Decoder(_Hello)


class _ClientInfoOut(msgspec.Struct, omit_defaults=True, kw_only=True):
    user: str
    client: str
    conn_info: msgspec.Raw | None = None
    chan_info: msgspec.Raw | None = None


class _PublicationOut(
    msgspec.Struct, omit_defaults=True, kw_only=True, tag_field="type", tag="publication"
):
    channel: str
    offset: int = 0
    epoch: str = ""
    #: Unix milliseconds when this node delivered it.
    time: int
    data: msgspec.Raw | None = None
    b64data: str = ""
    tags: dict[str, str] | None = None
    info: _ClientInfoOut | None = None


def _raw_or_none(data: bytes) -> msgspec.Raw | None:
    if not data:
        return None
    try:
        _validator.decode(data)
    except msgspec.DecodeError:
        return None
    return msgspec.Raw(data)


def encode_publication(channel: str, pub: Publication) -> bytes:
    """The tail message of one publication: JSON data inline, anything else in base64."""
    data = _raw_or_none(pub.data) if not pub.data_is_json else msgspec.Raw(pub.data)
    info = None
    if pub.info is not None:
        info = _ClientInfoOut(
            user=pub.info.user,
            client=pub.info.client,
            conn_info=_raw_or_none(pub.info.conn_info),
            chan_info=_raw_or_none(pub.info.chan_info),
        )
    return _encoder.encode(
        _PublicationOut(
            channel=channel,
            offset=pub.offset,
            epoch=pub.epoch,
            time=pub.time or int(time.time() * 1000),
            data=data if pub.data else msgspec.Raw(b"null"),
            b64data=base64.b64encode(pub.data).decode() if data is None and pub.data else "",
            tags=pub.tags or None,
            info=info,
        )
    )


class TailHandler:
    """The MessageHandler of one live-tail WebSocket."""

    #: Tail frames never go through the hub's fan-out, so no encoding key is registered.
    encoding_key = -1

    def __init__(
        self,
        node: Node,
        verify: Callable[[str], AdminToken | None] | None,
        registry: set[TailHandler],
        same_origin: bool,
    ) -> None:
        self._node = node
        #: None in admin.insecure mode: no token needed.
        self._verify = verify
        self._registry = registry
        self._same_origin = same_origin
        self.conn: WebSocketConnection | None = None
        self.claims: AdminToken | None = None
        self._authed = False
        self._channel = ""
        self._window = 0
        self._sent_in_window = 0
        self._dropped = 0

    # ---- MessageHandler ----

    def on_open(self, conn: WebSocketConnection) -> None:
        self.conn = conn
        if not self._same_origin:
            # Cross-site pages must not drive an operator's browser into the admin tail.
            self._close(CLOSE_UNAUTHORIZED, "origin not allowed")
            return
        self._registry.add(self)
        self._node.timers.call_later(AUTH_TIMEOUT, self._check_authenticated)
        self._node.timers.call_later(PING_INTERVAL, self._ping)

    def on_message(self, opcode: int, payload: memoryview) -> None:
        try:
            hello = _hello_decoder.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self._error("expected a JSON object with token and channel")
            self._close(CLOSE_BAD_REQUEST, "bad request")
            return
        if not self._authed and not self._authenticate(hello.token):
            return
        if hello.channel:
            run_eagerly(self._switch(hello.channel), self._node.loop)

    def on_pong(self, payload: bytes) -> None:
        pass

    def on_close(self, code: int, reason: str) -> None:
        self._registry.discard(self)
        if self._channel:
            channel, self._channel = self._channel, ""
            run_eagerly(self._node.remove_tap(channel, self._deliver), self._node.loop)

    def on_writer_failure(self, reason: int) -> None:
        self._close(CLOSE_SLOW, "too slow")

    # ---- auth ----

    def _authenticate(self, token: str) -> bool:
        if self._verify is not None:
            claims = self._verify(token)
            if claims is None:
                self._error("unauthorized")
                self._close(CLOSE_UNAUTHORIZED, "unauthorized")
                return False
            self.claims = claims
            delay = max(0.0, claims.exp - time.time())
            self._node.timers.call_later(delay, self._expire)
        self._authed = True
        return True

    def _check_authenticated(self) -> None:
        if not self._authed:
            self._close(CLOSE_UNAUTHORIZED, "no token")

    def _expire(self) -> None:
        claims = self.claims
        remaining = claims.exp - time.time() if claims is not None else 0.0
        if remaining > 0:  # the page renewed its token meanwhile
            self._node.timers.call_later(remaining, self._expire)
            return
        self.revoke()

    def revoke(self) -> None:
        """Close the tail: its token expired or was logged out."""
        self._close(CLOSE_EXPIRED, "token expired")

    # ---- channel ----

    async def _switch(self, channel: str) -> None:
        node = self._node
        try:
            node.channels.options(channel)
        except ReplyErrorException as exc:
            self._error(_describe(exc.error), channel)
            return
        previous, self._channel = self._channel, channel
        if previous == channel:
            self._send({"type": "subscribed", "channel": channel})
            return
        if previous:
            await node.remove_tap(previous, self._deliver)
        try:
            await node.add_tap(channel, self._deliver)
        except Exception as exc:
            logger.warning("admin tail of %r failed: %s", channel, exc)
            if self._channel == channel:
                self._channel = ""
            self._error("cannot follow this channel now", channel)
            return
        if self._channel != channel or self.conn is None or not self.conn.is_open:
            # Switched again or closed while the broker subscribed: undo this tap.
            await node.remove_tap(channel, self._deliver)
            return
        self._send({"type": "subscribed", "channel": channel})

    def _deliver(self, channel: str, pub: Publication) -> None:
        if channel != self._channel:
            return
        second = int(self._node.loop.time())
        if second != self._window:
            self._window = second
            self._sent_in_window = 0
        if self._sent_in_window >= MAX_PER_SECOND:
            self._dropped += 1
            return
        self._sent_in_window += 1
        if self._dropped:
            self._send({"type": "dropped", "channel": channel, "count": self._dropped})
            self._dropped = 0
        self._write(encode_publication(channel, pub))

    # ---- output ----

    def _ping(self) -> None:
        conn = self.conn
        if conn is not None and conn.is_open:
            conn.ping()
            self._node.timers.call_later(PING_INTERVAL, self._ping)

    def _error(self, message: str, channel: str = "") -> None:
        body: dict[str, Any] = {"type": "error", "message": message}
        if channel:
            body["channel"] = channel
        self._send(body)

    def _send(self, message: dict[str, Any]) -> None:
        self._write(_encoder.encode(message))

    def _write(self, payload: bytes) -> None:
        conn = self.conn
        if conn is not None and conn.is_open:
            conn.send(Opcode.TEXT, payload)

    def _close(self, code: int, reason: str) -> None:
        conn = self.conn
        if conn is not None and conn.is_open:
            conn.close(code, reason)
            self.on_close(code, reason)


def _describe(error: ReplyError) -> str:
    return f"{error.message} ({error.code})"
