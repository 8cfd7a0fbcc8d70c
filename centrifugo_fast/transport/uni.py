"""Unidirectional transports: uni_websocket, uni_sse, uni_http_stream (spec §9.6).

The client sends one ConnectRequest (not a Command) and then only listens. Every server
message is a bare Push: first a `connect` push, then publications, join/leave, subscribe/
unsubscribe, server pings as the empty push `{}` (no pong is expected), and finally a
`disconnect` push before the connection closes. Only server-side subscriptions exist (token
`channels`/`subs`, the personal channel, server API subscribe). A connect error becomes a
disconnect (core.client maps the codes).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable

import msgspec

from .. import codes
from ..codes import Disconnect
from ..core.client import Client
from ..core.fanout import Writer
from ..core.hub import PushEncoder
from ..core.node import Node
from ..protocol.codec_json import UNI_JSON
from ..protocol.frames import Opcode
from ..protocol.http11 import text_response
from ..protocol.messages import Command, ConnectRequest, DisconnectPushMsg, Push
from .client_stream import StreamClientTransport, line_frame, register_stream_encoding, sse_frame
from .cors import (
    SSE_CONTENT_TYPE,
    STREAM_HEADERS,
    Cors,
    forbidden,
    method_not_allowed,
    query_value,
)
from .http import Request, StreamResponse
from .websocket import WebSocketConnection, encode_message
from .ws_keepalive import NativeKeepalive

_connect_request = msgspec.json.Decoder(ConnectRequest | None)


def parse_connect_request(data: bytes) -> ConnectRequest | None:
    """A ConnectRequest from JSON (empty input or `null`: an empty request); None if invalid."""
    if not data.strip():
        return ConnectRequest()
    try:
        request = _connect_request.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return request if request is not None else ConnectRequest()


def _connect_batch(request: ConnectRequest) -> list[Command]:
    return [Command(id=1, connect=request)]


class UniStreamEndpoints:
    """The handlers of `/connection/uni_sse` and `/connection/uni_http_stream`."""

    def __init__(
        self,
        node: Node,
        cors: Cors,
        admit: Callable[[], bool] | None,
        header_user: Callable[[Request], str],
    ) -> None:
        self.node = node
        self.cors = cors
        self.admit = admit
        self.header_user = header_user
        self._sse_key = register_stream_encoding(node, "uni_sse", UNI_JSON, sse_frame)
        self._http_key = register_stream_encoding(node, "uni_http_stream", UNI_JSON, line_frame)

    def _open(
        self,
        request: Request,
        connect: ConnectRequest,
        sse: bool,
        headers: list[tuple[str, str]],
    ) -> StreamResponse:
        transport = StreamClientTransport(
            self.node,
            "uni_sse" if sse else "uni_http_stream",
            UNI_JSON,
            sse_frame if sse else line_frame,
            self._sse_key if sse else self._http_key,
            unidirectional=True,
            header_user=self.header_user(request),
        )
        # An empty line first, as LF (see EmulationEndpoints.sse: why not CRLF).
        prelude = b"\n" if sse else b""
        batch = _connect_batch(connect)
        return StreamResponse(
            [*headers, *STREAM_HEADERS], lambda stream: transport.start(stream, batch, prelude)
        )

    def _check(self, request: Request) -> bytes | list[tuple[str, str]]:
        """The CORS headers, or the refusal (403 origin, 503 admission)."""
        cors = self.cors.headers(request)
        if cors is None:
            return forbidden()
        if self.node.closing or (self.admit is not None and not self.admit()):
            return text_response(503, "too many new connections", keep_alive=False)
        return cors

    async def uni_sse(self, request: Request) -> bytes | StreamResponse:
        """`GET /connection/uni_sse?cf_connect=<ConnectRequest JSON>` (absent: empty request)
        or POST with the JSON body."""
        if request.method == "OPTIONS":
            return self.cors.preflight(request, "GET, POST, OPTIONS")
        if request.method == "GET":
            data = (query_value(request.query, "cf_connect") or "").encode()
        elif request.method == "POST":
            data = request.body
        else:
            return method_not_allowed("GET, POST, OPTIONS")
        checked = self._check(request)
        if isinstance(checked, bytes):
            return checked
        connect = parse_connect_request(data)
        if connect is None:
            return text_response(400, "malformed connect request", keep_alive=False)
        return self._open(request, connect, True, [*checked, SSE_CONTENT_TYPE])

    async def uni_http_stream(self, request: Request) -> bytes | StreamResponse:
        """`POST /connection/uni_http_stream` with the ConnectRequest JSON as body."""
        if request.method == "OPTIONS":
            return self.cors.preflight(request, "POST, OPTIONS")
        if request.method != "POST":
            return method_not_allowed("POST, OPTIONS")
        checked = self._check(request)
        if isinstance(checked, bytes):
            return checked
        connect = parse_connect_request(request.body)
        if connect is None:
            return text_response(400, "malformed connect request", keep_alive=False)
        headers = [*checked, ("Content-Type", "application/json")]
        return self._open(request, connect, False, headers)


def uni_websocket_encoding_key(node: Node) -> int:
    """The hub encoding key of uni_websocket pushes: one text frame per push."""
    frame = functools.partial(encode_message, Opcode.TEXT, deflate=None)
    return node.hub.register_encoding("uni_websocket/json", PushEncoder(UNI_JSON, frame, True))


class UniWebSocketClientTransport:
    """core.Transport and MessageHandler of one uni_websocket connection.

    The ConnectRequest comes from the `cf_connect` query parameter or, without one, as the
    first text message (a literal `null` is an empty request; invalid JSON closes with 3501).
    Later messages are ignored. Besides the `{}` pushes the connection is kept alive with
    WebSocket ping frames; a missing pong within the pong timeout closes it with 3012.
    """

    name = "uni_websocket"
    protocol_type = "json"
    unidirectional = True
    app_level_ping = True

    def __init__(self, node: Node, connect_query: str | None, header_user: str = "") -> None:
        self.node = node
        self.header_user = header_user
        self.encoding_key = uni_websocket_encoding_key(node)
        #: Reported in the connect push, as for the other unidirectional transports.
        self.session = str(uuid.uuid4())
        self._connect_query = connect_query
        self.conn: WebSocketConnection | None = None
        self.client: Client | None = None
        self.writer: Writer
        self._started = False
        self._keepalive: NativeKeepalive | None = None

    # ---- MessageHandler ----

    def on_open(self, conn: WebSocketConnection) -> None:
        self.conn = conn
        self.writer = conn.writer
        self.client = Client(self.node, self, UNI_JSON)
        self._keepalive = NativeKeepalive(self.node, conn, self.client)
        self._keepalive.start()
        if self._connect_query is not None:
            self._connect(self._connect_query.encode())

    def on_message(self, opcode: int, payload: memoryview) -> None:
        if self._started or self.client is None:
            return
        if opcode != Opcode.TEXT:
            self._started = True
            self.client.disconnect(codes.DISCONNECT_BAD_REQUEST)
            return
        self._connect(bytes(payload))

    def _connect(self, data: bytes) -> None:
        client = self.client
        if client is None:
            return
        self._started = True
        request = parse_connect_request(data)
        if request is None:
            client.disconnect(codes.DISCONNECT_BAD_REQUEST)
            return
        client.handle_commands(_connect_batch(request))

    def on_pong(self, payload: bytes) -> None:
        if self._keepalive is not None:
            self._keepalive.pong()

    def on_close(self, code: int, reason: str) -> None:
        if self.client is not None:
            self.client.on_transport_closed()

    def on_writer_failure(self, reason: int) -> None:
        if self.client is not None:
            self.client.on_writer_failure(reason)

    # ---- core.Transport ----

    def write(self, payload: bytes) -> None:
        if self.conn is not None:
            self.conn.send(Opcode.TEXT, payload)

    def close(self, disconnect: Disconnect | None) -> None:
        conn = self.conn
        if conn is None:
            return
        if disconnect is None:
            conn.close(None)
            return
        push = Push(disconnect=DisconnectPushMsg(code=disconnect.code, reason=disconnect.reason))
        conn.send(Opcode.TEXT, UNI_JSON.encode_push(push))
        conn.close(disconnect.code, disconnect.reason)
