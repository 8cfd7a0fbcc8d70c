"""The Centrifugo client over a bidirectional WebSocket: the MessageHandler that owns a Client."""

from __future__ import annotations

from ..codes import Disconnect
from ..core.client import Client
from ..core.fanout import Writer
from ..core.hub import PushEncoder
from ..core.node import Node
from ..protocol.codec import Codec
from ..protocol.codec_json import JSON
from ..protocol.frames import Opcode, encode_frame
from .websocket import WebSocketConnection


def _text_frame(payload: bytes) -> bytes:
    return encode_frame(Opcode.TEXT, payload)


def websocket_encoding_key(node: Node, codec: Codec) -> int:
    """The hub encoding key of bidirectional WebSocket pushes in `codec`."""
    if codec is JSON:
        return node.hub.register_encoding("websocket/json", PushEncoder(JSON, _text_frame, False))
    raise ValueError(f"no WebSocket framing for {codec.name}")


class WebSocketClientTransport:
    """Implements core.Transport on a WebSocketConnection and feeds it to a Client."""

    name = "websocket"
    unidirectional = False

    def __init__(self, node: Node, codec: Codec, *, app_level_ping: bool = True) -> None:
        self.node = node
        self.codec = codec
        self.protocol_type = codec.name
        self.app_level_ping = app_level_ping
        self.encoding_key = websocket_encoding_key(node, codec)
        self.conn: WebSocketConnection | None = None
        self.client: Client | None = None
        self.writer: Writer

    # ---- MessageHandler ----

    def on_open(self, conn: WebSocketConnection) -> None:
        self.conn = conn
        self.writer = conn.writer
        self.client = Client(self.node, self, self.codec)

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
