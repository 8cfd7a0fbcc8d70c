"""SockJS (legacy, JSON protocol only) at `/connection/sockjs` (spec §9.5).

Written from the SockJS protocol as sockjs-client speaks it. Paths under the prefix:

  * `GET /info`: `{"websocket":true,"origins":["*:*"],"cookie_needed":false,"entropy":N}`;
  * `/<server>/<session>/websocket`: a WebSocket carrying SockJS frames;
  * `POST /<server>/<session>/xhr_streaming`, `POST .../xhr` (long polling) and
    `GET .../eventsource`: receiving requests of an HTTP session;
  * `POST /<server>/<session>/xhr_send`: a JSON array of messages from the client, 204.

Frames: `o` (open), `a["msg",...]` (messages), `c[code,"reason"]` (close), `h` (heartbeat;
never sent: Centrifugo's app-level pings keep the connection alive). Each SockJS message
carries one Centrifugo JSON frame, in both directions. A Centrifugo disconnect is the close
frame with its code and reason.

An HTTP session outlives its receiving requests: frames wait in the session's bounded
Writer while no request is attached (a client that stops polling is cut as slow, 3008, or
closed when no request came for `disconnect_delay`). A polling request ends after the first
frames, a streaming one after `RESPONSE_LIMIT` bytes; the client then opens the next one. A
second receiving request while one is attached gets `c[2010,...]`. A closed session answers
its close frame for `disconnect_delay`, then is forgotten. Several nodes need sticky sessions:
every request of an HTTP session must reach the node that holds it.
"""

from __future__ import annotations

import functools
import logging
import random
import re
from collections.abc import Callable

import msgspec

from .. import codes
from ..codes import Disconnect
from ..core.client import Client
from ..core.fanout import FAIL_SLOW, Writer
from ..core.hub import PushEncoder
from ..core.node import Node
from ..protocol.codec_json import JSON
from ..protocol.frames import Opcode, encode_frame
from ..protocol.http11 import render_response, text_response
from .cors import NO_CACHE, Cors, forbidden, method_not_allowed
from .http import HttpStream, Request, StreamResponse
from .websocket import WebSocketConnection

logger = logging.getLogger("centrifugo_fast.sockjs")

#: A streaming response is ended after this many bytes (the client opens the next one).
RESPONSE_LIMIT = 128 * 1024
#: How long an HTTP session waits for its next receiving request, and how long a closed one
#: still answers with its close frame.
DISCONNECT_DELAY = 5.0

OPEN_FRAME = b"o"
ANOTHER_CONNECTION = b'c[2010,"Another connection still open"]'
_PATH = re.compile(r"^/([^/.]+)/([^/.]+)/([a-z_]+)$")
_RECEIVERS = ("xhr", "xhr_streaming", "eventsource")
_messages = msgspec.json.Decoder(list[str] | str)
_encoder = msgspec.json.Encoder()


def message_frame(payload: bytes) -> bytes:
    """An `a[...]` frame carrying one Centrifugo JSON frame as a SockJS message."""
    return b"a[" + _encoder.encode(payload.decode("utf-8", "replace")) + b"]"


def close_frame(disconnect: Disconnect | None) -> bytes:
    """A `c[code,"reason"]` frame."""
    if disconnect is None:
        disconnect = codes.DISCONNECT_CONNECTION_CLOSED
    return b"c[%d,%s]" % (disconnect.code, _encoder.encode(disconnect.reason))


def _line(frame: bytes) -> bytes:
    return frame + b"\n"


def _event(frame: bytes) -> bytes:
    # sockjs-client applies decodeURI to every event: keep a literal % intact.
    if b"%" in frame:
        frame = frame.replace(b"%", b"%25")
    return b"data: " + frame + b"\r\n\r\n"


#: How each receiving request kind frames what it carries.
_FRAMING: dict[str, Callable[[bytes], bytes]] = {
    "xhr": _line,
    "xhr_streaming": _line,
    "eventsource": _event,
}
_PRELUDE = {"xhr": b"", "xhr_streaming": b"h" * 2048 + b"\n", "eventsource": b"\r\n"}
_CONTENT_TYPE = {
    "xhr": "application/javascript; charset=UTF-8",
    "xhr_streaming": "application/javascript; charset=UTF-8",
    "eventsource": "text/event-stream; charset=UTF-8",
}


def accepts_websocket(prefix: str) -> Callable[[str], bool]:
    """Which upgrade paths under `prefix` are SockJS WebSocket endpoints."""

    def accepts(path: str) -> bool:
        match = _PATH.match(path[len(prefix) :])
        return match is not None and match.group(3) == "websocket"

    return accepts


class _SessionSink:
    """What a session's Writer writes to: the attached request, or the session's backlog."""

    __slots__ = ("session",)

    def __init__(self, session: SockJSSession) -> None:
        self.session = session

    def write(self, data: bytes) -> None:
        self.session.deliver(data)

    def get_write_buffer_size(self) -> int:
        return self.session.buffered()


class SockJSSession:
    """core.Transport of one HTTP SockJS session (xhr_streaming, xhr polling, eventsource)."""

    name = "sockjs"
    protocol_type = "json"
    unidirectional = False
    app_level_ping = True

    def __init__(
        self, endpoints: SockJSEndpoints, sid: str, kind: str, header_user: str = ""
    ) -> None:
        node = endpoints.node
        self.endpoints = endpoints
        self.sid = sid
        self.kind = kind
        self.header_user = header_user
        self._frame = _FRAMING[kind]
        self.receiver: HttpStream | None = None
        self._sent = 0
        self._backlog: list[bytes] = []
        self._backlog_size = 0
        self._opened = False
        #: Set once closed: what every later receiving request gets.
        self.closed_with: bytes | None = None
        self._attach_generation = 0
        self.writer = Writer(
            _SessionSink(self),
            node.flush_scheduler,
            node.config.client.queue_max_size,
            endpoints.encoding_key(kind),
            self._writer_failed,
        )
        self.client = Client(node, self, JSON)

    # ---- receiving requests ----

    def attach(self, stream: HttpStream) -> None:
        """A receiving request of this session arrived (its response head is written)."""
        stream.write(_PRELUDE[self.kind])
        if self.closed_with is not None:
            stream.end(self._frame(self.closed_with))
            return
        if self.receiver is not None:
            stream.end(self._frame(ANOTHER_CONNECTION))
            return
        self.receiver = stream
        self._sent = 0
        self._attach_generation += 1
        stream.on_close = self._detached
        if not self._opened:
            self._opened = True
            self.deliver(self._frame(OPEN_FRAME))
        elif self._backlog:
            backlog, self._backlog, self._backlog_size = self._backlog, [], 0
            self.deliver(b"".join(backlog))

    def deliver(self, data: bytes) -> None:
        """Send framed data on the attached request, or keep it until one comes."""
        receiver = self.receiver
        if receiver is None:
            self._backlog.append(data)
            self._backlog_size += len(data)
            return
        receiver.write(data)
        self._sent += len(data)
        if self.kind == "xhr" or self._sent >= RESPONSE_LIMIT:
            self._end_receiver()

    def buffered(self) -> int:
        """Bytes waiting: in the socket of the attached request, or in the backlog."""
        if self.receiver is not None:
            return self.receiver.get_write_buffer_size()
        return self._backlog_size

    def _end_receiver(self, last: bytes = b"") -> None:
        receiver, self.receiver = self.receiver, None
        if receiver is not None:
            receiver.on_close = None
            receiver.end(last)
            self._wait_for_receiver()

    def _detached(self) -> None:
        """The attached request went away (peer closed it)."""
        self.receiver = None
        self._wait_for_receiver()

    def _wait_for_receiver(self) -> None:
        if self.closed_with is not None:
            return
        generation = self._attach_generation
        self.endpoints.node.timers.call_later(
            self.endpoints.disconnect_delay, lambda: self._check_receiver(generation)
        )

    def _check_receiver(self, generation: int) -> None:
        if (
            self.closed_with is None
            and self.receiver is None
            and generation == self._attach_generation
        ):
            # The client is gone: no request for the whole delay.
            self.client.disconnect(None)

    # ---- core.Transport ----

    def write(self, payload: bytes) -> None:
        """Frame one Centrifugo frame as a SockJS message and queue it."""
        if self.closed_with is None:
            self.writer.enqueue(self._frame(message_frame(payload)))

    def close(self, disconnect: Disconnect | None) -> None:
        """Close the session with a close frame; keep answering it for a while."""
        if self.closed_with is not None:
            return
        self.closed_with = close_frame(disconnect)
        slow = disconnect is not None and disconnect.code == codes.DISCONNECT_SLOW.code
        queued = [] if slow else self.writer.drain()
        self.writer.close()
        self._backlog, self._backlog_size = [], 0
        receiver, self.receiver = self.receiver, None
        if receiver is not None:
            receiver.on_close = None
            if slow:
                receiver.abort()
            else:
                queued.append(self._frame(self.closed_with))
                receiver.end(b"".join(queued))
        self.endpoints.forget_later(self)

    def _writer_failed(self, reason: int) -> None:
        if self.closed_with is None:
            self.client.on_writer_failure(reason)
        elif reason == FAIL_SLOW and self.receiver is not None:
            self.receiver.abort()


class SockJSWebSocketTransport:
    """core.Transport and MessageHandler of a SockJS session over WebSocket."""

    name = "sockjs"
    protocol_type = "json"
    unidirectional = False
    app_level_ping = True

    def __init__(self, node: Node, encoding_key: int, header_user: str = "") -> None:
        self.node = node
        self.encoding_key = encoding_key
        self.header_user = header_user
        self.conn: WebSocketConnection | None = None
        self.client: Client | None = None
        self.writer: Writer

    # ---- MessageHandler ----

    def on_open(self, conn: WebSocketConnection) -> None:
        self.conn = conn
        self.writer = conn.writer
        conn.send(Opcode.TEXT, OPEN_FRAME)
        self.client = Client(self.node, self, JSON)

    def on_message(self, opcode: int, payload: memoryview) -> None:
        client = self.client
        if client is None or not payload:
            return
        try:
            messages = _messages.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError):
            logger.debug("sockjs client %s sent broken JSON", client.id)
            client.disconnect(codes.DISCONNECT_BAD_REQUEST)
            return
        for message in [messages] if isinstance(messages, str) else messages:
            client.handle_data(message.encode())

    def on_pong(self, payload: bytes) -> None:
        pass

    def on_close(self, code: int, reason: str) -> None:
        if self.client is not None:
            self.client.on_transport_closed()

    def on_writer_failure(self, reason: int) -> None:
        if self.client is not None:
            self.client.on_writer_failure(reason)

    # ---- core.Transport ----

    def write(self, payload: bytes) -> None:
        if self.conn is not None:
            self.conn.send(Opcode.TEXT, message_frame(payload))

    def close(self, disconnect: Disconnect | None) -> None:
        conn = self.conn
        if conn is None:
            return
        conn.send(Opcode.TEXT, close_frame(disconnect))
        if disconnect is None:
            conn.close(1000)
        else:
            conn.close(disconnect.code, disconnect.reason)


def _ws_frame(payload: bytes) -> bytes:
    return encode_frame(Opcode.TEXT, message_frame(payload))


class SockJSEndpoints:
    """Everything under the SockJS prefix except the WebSocket upgrade itself."""

    def __init__(
        self,
        node: Node,
        prefix: str,
        cors: Cors,
        admit: Callable[[], bool] | None,
        header_user: Callable[[Request], str],
    ) -> None:
        self.node = node
        self.prefix = prefix.rstrip("/")
        self.cors = cors
        self.admit = admit
        self.header_user = header_user
        self.disconnect_delay = DISCONNECT_DELAY
        #: Open (and recently closed) HTTP sessions: session id -> session.
        self.sessions: dict[str, SockJSSession] = {}
        hub = node.hub
        self._keys = {
            kind: hub.register_encoding(
                f"sockjs/{kind}",
                PushEncoder(JSON, functools.partial(_frame_message, _FRAMING[kind]), False),
            )
            for kind in _RECEIVERS
        }
        self.websocket_key = hub.register_encoding(
            "sockjs/websocket", PushEncoder(JSON, _ws_frame, False)
        )

    def encoding_key(self, kind: str) -> int:
        """The hub encoding key of sessions whose requests are of `kind`."""
        return self._keys[kind]

    def forget_later(self, session: SockJSSession) -> None:
        """Drop a closed session once it stopped answering its close frame."""

        def forget() -> None:
            if self.sessions.get(session.sid) is session:
                del self.sessions[session.sid]

        self.node.timers.call_later(self.disconnect_delay, forget)

    def websocket_transport(self, request: Request) -> SockJSWebSocketTransport:
        """The handler of an accepted `/<server>/<session>/websocket` upgrade."""
        return SockJSWebSocketTransport(self.node, self.websocket_key, self.header_user(request))

    # ---- HTTP ----

    async def handle(self, request: Request) -> bytes | StreamResponse:
        """Route a plain request under the prefix."""
        rest = request.path[len(self.prefix) :]
        if rest in ("", "/"):
            body = b"Welcome to SockJS!\n"
            return render_response(200, [("Content-Type", "text/plain; charset=UTF-8")], body)
        if rest == "/info":
            return self._info(request)
        match = _PATH.match(rest)
        if match is None:
            return text_response(404)
        sid, kind = match.group(2), match.group(3)
        if kind == "xhr_send":
            return self._xhr_send(request, sid)
        if kind in _RECEIVERS:
            return self._receive(request, sid, kind)
        if kind == "websocket":
            return text_response(400, 'Can "Upgrade" only to "WebSocket".', keep_alive=False)
        return text_response(404)

    def _info(self, request: Request) -> bytes:
        if request.method == "OPTIONS":
            return self.cors.preflight(request, "OPTIONS, GET")
        if request.method != "GET":
            return method_not_allowed("OPTIONS, GET")
        info = {
            "websocket": True,
            "origins": ["*:*"],
            "cookie_needed": False,
            "entropy": random.getrandbits(32),
        }
        headers = [("Content-Type", "application/json; charset=UTF-8"), *NO_CACHE]
        return self.cors.response(request, 200, _encoder.encode(info), headers)

    def _receive(self, request: Request, sid: str, kind: str) -> bytes | StreamResponse:
        method = "GET" if kind == "eventsource" else "POST"
        if request.method == "OPTIONS" and kind != "eventsource":
            return self.cors.preflight(request, "OPTIONS, POST")
        if request.method != method:
            return method_not_allowed(method)
        cors = self.cors.headers(request)
        if cors is None:
            return forbidden()
        session = self.sessions.get(sid)
        if session is None:
            if self.node.closing or (self.admit is not None and not self.admit()):
                return text_response(503, "too many new connections", keep_alive=False)
            session = SockJSSession(self, sid, kind, self.header_user(request))
            self.sessions[sid] = session
        elif session.kind != kind:
            return text_response(404)
        headers = [*cors, ("Content-Type", _CONTENT_TYPE[kind]), *NO_CACHE]
        return StreamResponse(headers, session.attach)

    def _xhr_send(self, request: Request, sid: str) -> bytes:
        if request.method == "OPTIONS":
            return self.cors.preflight(request, "OPTIONS, POST")
        if request.method != "POST":
            return method_not_allowed("OPTIONS, POST")
        if self.cors.headers(request) is None:
            return forbidden()
        session = self.sessions.get(sid)
        if session is None or session.closed_with is not None:
            return self.cors.response(request, 404, b"session not found\n")
        if not request.body:
            return self.cors.response(request, 500, b"Payload expected.\n")
        try:
            messages = _messages.decode(request.body)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return self.cors.response(request, 500, b"Broken JSON encoding.\n")
        for message in [messages] if isinstance(messages, str) else messages:
            session.client.handle_data(message.encode())
        headers = [("Content-Type", "text/plain; charset=UTF-8")]
        return self.cors.response(request, 204, b"", headers)


def _frame_message(framing: Callable[[bytes], bytes], payload: bytes) -> bytes:
    return framing(message_frame(payload))
