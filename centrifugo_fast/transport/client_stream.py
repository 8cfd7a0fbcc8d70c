"""The Centrifugo client over a streaming HTTP response (design.md §1, §4).

One class serves the bidirectional emulation transports (http_stream, sse: commands arrive
through `POST /emulation`) and the unidirectional ones (uni_http_stream, uni_sse: no commands
at all). Only the framing differs, and it is a function of the encoded reply/push:

  * http_stream JSON and uni_http_stream: one JSON object per line;
  * http_stream Protobuf: the varint-delimited message as it is;
  * sse and uni_sse: one `data:` event per message.

Every framing has its own hub encoding key, so a publication is encoded once per framing.
Frames go through the connection's bounded Writer (slow readers are cut with 3008), and a
disconnect is signalled in-band: a disconnect push, then the response ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from .. import codes
from ..codes import Disconnect
from ..core.client import Client
from ..core.fanout import Writer
from ..core.hub import PushEncoder
from ..core.node import Node
from ..protocol.codec import Codec
from ..protocol.messages import Command, DisconnectPushMsg, Push
from .http import HttpStream

Framing = Callable[[bytes], bytes]


def line_frame(payload: bytes) -> bytes:
    """A JSON message as one line of a newline-delimited stream."""
    return payload + b"\n"


def raw_frame(payload: bytes) -> bytes:
    """A Protobuf message: already length-delimited."""
    return payload


def sse_frame(payload: bytes) -> bytes:
    """A message as one Server-Sent Event (several lines become several `data:` fields,
    which the EventSource joins back with newlines)."""
    if b"\n" in payload:
        payload = payload.replace(b"\n", b"\ndata: ")
    return b"data: " + payload + b"\n\n"


def register_stream_encoding(node: Node, name: str, codec: Codec, frame: Framing) -> int:
    """The hub encoding key of one (transport, codec) framing."""
    return node.hub.register_encoding(
        f"{name}/{codec.name}", PushEncoder(codec, frame, name.startswith("uni_"))
    )


class StreamClientTransport:
    """Implements core.Transport on an HttpStream and feeds a Client."""

    app_level_ping = True

    def __init__(
        self,
        node: Node,
        name: str,
        codec: Codec,
        frame: Framing,
        encoding_key: int,
        *,
        unidirectional: bool,
        sessions: dict[str, StreamClientTransport] | None = None,
        header_user: str = "",
    ) -> None:
        self.node = node
        self.name = name
        self.codec = codec
        self.protocol_type = codec.name
        self.unidirectional = unidirectional
        self.header_user = header_user
        self.encoding_key = encoding_key
        #: The session id: routes `/emulation` requests here and appears in the connect result.
        self.session = str(uuid.uuid4())
        self._frame = frame
        #: The registry of emulation sessions this transport belongs to (None: not routable).
        self._sessions = sessions
        self.stream: HttpStream | None = None
        self.writer: Writer
        self.client: Client | None = None
        self.closed = False

    def start(self, stream: HttpStream, commands: list[Command], prelude: bytes = b"") -> None:
        """Take the response stream, create the Client and hand it the connect batch."""
        self.stream = stream
        stream.on_close = self._stream_closed
        self.writer = Writer(
            stream,
            self.node.flush_scheduler,
            self.node.config.client.queue_max_size,
            self.encoding_key,
            self._writer_failed,
        )
        if prelude:
            stream.write(prelude)
        if self._sessions is not None:
            self._sessions[self.session] = self
        client = Client(self.node, self, self.codec)
        self.client = client
        client.handle_commands(commands)

    # ---- core.Transport ----

    def write(self, payload: bytes) -> None:
        """Frame one encoded reply/push and queue it."""
        if not self.closed:
            self.writer.enqueue(self._frame(payload))

    def close(self, disconnect: Disconnect | None) -> None:
        """Signal `disconnect` in-band and end the response (a slow reader is dropped)."""
        if self.closed:
            return
        self._forget()
        stream = self.stream
        if stream is None:
            return
        stream.on_close = None
        if disconnect is None:
            self.writer.close()
            stream.end()
            return
        if disconnect.code == codes.DISCONNECT_SLOW.code:
            # It does not read: nothing more can reach it.
            self.writer.close()
            stream.abort()
            return
        queued = self.writer.drain()
        self.writer.close()
        push = Push(disconnect=DisconnectPushMsg(code=disconnect.code, reason=disconnect.reason))
        queued.append(self._frame(self.codec.encode_push(push)))
        stream.end(b"".join(queued))

    # ---- internals ----

    def _forget(self) -> None:
        self.closed = True
        if self._sessions is not None and self._sessions.get(self.session) is self:
            del self._sessions[self.session]

    def _stream_closed(self) -> None:
        """The peer went away (or the response was ended by the server)."""
        if self.closed:
            return
        self._forget()
        self.writer.close()
        if self.client is not None:
            self.client.on_transport_closed()

    def _writer_failed(self, reason: int) -> None:
        if self.client is not None and not self.closed:
            self.client.on_writer_failure(reason)
        elif self.stream is not None:
            self.stream.abort()
