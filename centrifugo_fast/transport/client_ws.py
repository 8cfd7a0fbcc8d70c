"""The Centrifugo client over a bidirectional WebSocket: the MessageHandler that owns a Client."""

from __future__ import annotations

import functools

from ..codes import Disconnect
from ..core.client import Client
from ..core.fanout import Writer
from ..core.hub import PushEncoder
from ..core.node import Node
from ..protocol.codec import Codec
from ..protocol.deflate import DeflateParams
from .websocket import WebSocketConnection, encode_message
from .ws_keepalive import NativeKeepalive


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
        self._keepalive: NativeKeepalive | None = None

    # ---- MessageHandler ----

    def on_open(self, conn: WebSocketConnection) -> None:
        self.conn = conn
        self.writer = conn.writer
        self.client = Client(self.node, self, self.codec)
        if not self.app_level_ping:
            # cf_ws_frame_ping_pong=true: keep-alive with WebSocket ping/pong frames instead.
            self._keepalive = NativeKeepalive(self.node, conn, self.client)
            self._keepalive.start()

    def on_pong(self, payload: bytes) -> None:
        if self._keepalive is not None:
            self._keepalive.pong()

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
