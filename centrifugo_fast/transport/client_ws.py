"""The Centrifugo client over a bidirectional WebSocket: the MessageHandler that owns a Client."""

from __future__ import annotations

import functools

from .. import codes
from ..codes import Disconnect
from ..core.client import Client
from ..core.fanout import Writer
from ..core.hub import PushEncoder
from ..core.node import Node
from ..protocol.codec import Codec
from ..protocol.deflate import DeflateParams
from .websocket import WebSocketConnection, encode_message


def websocket_encoding_key(node: Node, codec: Codec, deflate: DeflateParams | None = None) -> int:
    """The hub encoding key of bidirectional WebSocket pushes in `codec`.

    With permessage-deflate every connection negotiates no context takeover, so one
    compressed frame per publication serves every connection with the same parameters.
    """
    name = f"websocket/{codec.name}"
    if deflate is not None:
        name += f"/deflate/{deflate.level}/{deflate.min_size}/{deflate.server_max_window_bits}"
    known = node.hub.encoding_key(name)
    if known is not None:
        return known  # the common case: no encoder to build per connection
    frame = functools.partial(encode_message, codec.ws_opcode, deflate=deflate)
    return node.hub.register_encoding(name, PushEncoder(codec, frame, False))


class WebSocketClientTransport:
    """Implements core.Transport on a WebSocketConnection and feeds it to a Client."""

    name = "websocket"
    unidirectional = False

    def __init__(
        self,
        node: Node,
        codec: Codec,
        *,
        app_level_ping: bool = True,
        header_user: str = "",
        deflate: DeflateParams | None = None,
    ) -> None:
        self.node = node
        #: User ID from client.user_id_http_header, set by a trusted proxy ("" = none).
        self.header_user = header_user
        self.codec = codec
        self.protocol_type = codec.name
        self.app_level_ping = app_level_ping
        self.encoding_key = websocket_encoding_key(node, codec, deflate)
        self.conn: WebSocketConnection | None = None
        self.client: Client | None = None
        self.writer: Writer
        self._pong_pending = False
        self._ping_generation = 0

    # ---- MessageHandler ----

    def on_open(self, conn: WebSocketConnection) -> None:
        self.conn = conn
        self.writer = conn.writer
        self.client = Client(self.node, self, self.codec)
        if not self.app_level_ping and self.node.config.client.ping_interval > 0:
            # cf_ws_frame_ping_pong=true: keep-alive with WebSocket ping/pong frames instead.
            self.node.timers.call_later(self.node.config.client.ping_interval, self._native_ping)

    def _native_ping(self) -> None:
        conn, client = self.conn, self.client
        if conn is None or client is None or not conn.is_open:
            return
        cfg = self.node.config.client
        self._pong_pending = True
        self._ping_generation += 1
        generation = self._ping_generation
        conn.ping()
        if cfg.pong_timeout > 0:
            self.node.timers.call_later(cfg.pong_timeout, lambda: self._check_pong(generation))
        self.node.timers.call_later(cfg.ping_interval, self._native_ping)

    def _check_pong(self, generation: int) -> None:
        if self._pong_pending and generation == self._ping_generation and self.client:
            self.client.disconnect(codes.DISCONNECT_NO_PONG)

    def on_pong(self, payload: bytes) -> None:
        self._pong_pending = False

    def on_message(self, opcode: int, payload: memoryview) -> None:
        if self.client is not None:
            # The payload view is only valid during this call; commands keep raw bytes.
            self.client.handle_data(bytes(payload))

    def on_close(self, code: int, reason: str) -> None:
        if self.client is not None:
            self.client.on_transport_closed()

    def on_writer_failure(self, reason: int) -> None:
        if self.client is not None:
            self.client.on_writer_failure(reason)

    # ---- core.Transport ----

    def write(self, payload: bytes) -> None:
        if self.conn is not None:
            self.conn.send(self.codec.ws_opcode, payload)

    def close(self, disconnect: Disconnect | None) -> None:
        if self.conn is None:
            return
        if disconnect is None:
            self.conn.close(None)
        else:
            self.conn.close(disconnect.code, disconnect.reason)
