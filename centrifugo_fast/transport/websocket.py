"""A WebSocket connection on asyncio: frame parser + bounded writer + close handshake.

It knows RFC 6455 and nothing of Centrifugo (design.md §4b): it drives a MessageHandler.
The Centrifugo client adapter is one handler; the compliance echo server is another, so the
conformance suite exercises exactly the production parser, writer and close logic.

With permessage-deflate negotiated (RFC 7692, `protocol.deflate`), compressed client messages
are inflated by the frame parser, and `send` compresses what it sends. Every compressed frame
is built without context takeover, so `encode_message` output for one payload is the same for
every connection with the same DeflateParams: fan-out builds it once per publication.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from ..core.fanout import FlushScheduler, Writer
from ..core.timers import TimerWheel
from ..protocol.deflate import DeflateParams, compress
from ..protocol.frames import CloseCode, FrameParser, Opcode, encode_close, encode_frame

logger = logging.getLogger("centrifugo_fast.websocket")

OPEN = 0
CLOSING = 1
CLOSED = 2


class MessageHandler(Protocol):
    """What a WebSocketConnection calls."""

    #: Key of the (codec, framing) combination this connection's pushes use.
    encoding_key: int

    def on_open(self, conn: WebSocketConnection) -> None: ...

    def on_message(self, opcode: int, payload: memoryview) -> None: ...

    def on_pong(self, payload: bytes) -> None: ...

    def on_close(self, code: int, reason: str) -> None: ...

    def on_writer_failure(self, reason: int) -> None: ...


def compressed_frame(opcode: int, payload: bytes, deflate: DeflateParams) -> bytes:
    """One compressed (RSV1) frame carrying a whole message, whatever its size."""
    data = compress(payload, deflate.level, deflate.server_max_window_bits)
    return encode_frame(opcode, data, True, True)


def encode_message(opcode: int, payload: bytes, deflate: DeflateParams | None) -> bytes:
    """The frame a connection with these parameters sends for one message.

    Compressed when permessage-deflate was negotiated and the payload passes the size rule
    (`DeflateParams.should_compress`), else a plain frame. Depends only on the arguments, so
    the bytes can be shared by every connection with equal `deflate` (DeflateParams is
    hashable: use it in the key of a prepared push).
    """
    if deflate is not None and deflate.should_compress(len(payload)):
        return compressed_frame(opcode, payload, deflate)
    return encode_frame(opcode, payload)


@dataclass(frozen=True, slots=True)
class WebSocketLimits:
    """Per-listener limits."""

    max_message_size: int = 65536
    max_queue_size: int = 1048576
    #: How long to wait for the peer's close frame after sending ours.
    close_timeout: float = 5.0


class WebSocketConnection(asyncio.BufferedProtocol):
    """One upgraded connection: reads frames into the parser, writes through a Writer."""

    __slots__ = (
        "transport",
        "parser",
        "handler",
        "writer",
        "state",
        "_timers",
        "_timeout",
        "_registry",
        "deflate",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        handler: MessageHandler,
        limits: WebSocketLimits,
        scheduler: FlushScheduler,
        timers: TimerWheel,
        registry: set[asyncio.BaseProtocol] | None = None,
        *,
        deflate: DeflateParams | None = None,
    ) -> None:
        self.transport = transport
        #: The listener's set of open connections (for shutdown); we leave it when lost.
        self._registry = registry
        self.handler = handler
        self.state = OPEN
        self._timers = timers
        self._timeout = limits.close_timeout
        #: The negotiated permessage-deflate parameters (None: not negotiated).
        self.deflate = deflate
        self.parser = FrameParser(self, limits.max_message_size, inflate=deflate is not None)
        self.writer = Writer(
            transport, scheduler, limits.max_queue_size, handler.encoding_key, self._writer_failed
        )

    def start(self, leftover: bytes) -> None:
        """Take over the transport after the 101 response; parse bytes read past it."""
        self.transport.set_protocol(self)
        if self._registry is not None:
            self._registry.add(self)
        self.handler.on_open(self)
        if leftover and self.state == OPEN:
            self.parser.feed_data(leftover)

    # ---- asyncio.BufferedProtocol ----

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.parser.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        self.parser.buffer_updated(nbytes)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        was = self.state
        self.state = CLOSED
        if self._registry is not None:
            self._registry.discard(self)
        self.parser.release()
        self.writer.close()
        if was == OPEN:
            self.handler.on_close(CloseCode.ABNORMAL_CLOSURE, "")

    # ---- FrameParser sink ----

    def on_message(self, opcode: int, payload: memoryview) -> None:
        if self.state == OPEN:
            self.handler.on_message(opcode, payload)

    def on_ping(self, payload: bytes) -> None:
        if self.state == OPEN:
            self.writer.enqueue(encode_frame(Opcode.PONG, payload))

    def on_pong(self, payload: bytes) -> None:
        if self.state == OPEN:
            self.handler.on_pong(payload)

    def on_close(self, code: int, reason: str) -> None:
        if self.state == OPEN:
            # Peer-initiated: echo its code (RFC 6455 §5.5.1), then close the TCP side.
            self.state = CLOSING
            self._send_close_frame(encode_close(code if code != CloseCode.NO_STATUS_RCVD else 0))
            self.handler.on_close(code, reason)
        self._close_transport()

    def on_protocol_error(self, close_code: int, reason: str) -> None:
        logger.debug("websocket protocol error %d: %s", close_code, reason)
        if self.state == OPEN:
            self.state = CLOSING
            self._send_close_frame(encode_close(close_code, reason))
            self.handler.on_close(close_code, reason)
        self._close_transport()

    # ---- output ----

    def ping(self, payload: bytes = b"") -> None:
        """Queue a WebSocket ping frame."""
        if self.state == OPEN:
            self.writer.enqueue(encode_frame(Opcode.PING, payload))

    def send(self, opcode: int, payload: bytes) -> None:
        """Queue one message as a single frame (compressed when negotiated, see encode_message)."""
        if self.state == OPEN:
            deflate = self.deflate
            if deflate is not None and deflate.should_compress(len(payload)):
                self.writer.enqueue(compressed_frame(opcode, payload, deflate))
            else:
                self.writer.enqueue(encode_frame(opcode, payload))

    @property
    def is_open(self) -> bool:
        """True until a close frame was sent or received."""
        return self.state == OPEN

    def close(self, code: int | None, reason: str = "") -> None:
        """Start the closing handshake; None drops the connection without a close frame."""
        if self.state != OPEN:
            return
        self.state = CLOSING
        if code is None:
            self._close_transport(flush=True)
            return
        self._send_close_frame(encode_close(code, reason))
        # Wait for the peer's close frame; drop the connection if it never comes.
        self._timers.call_later(self._timeout, self.abort)

    def _send_close_frame(self, frame: bytes) -> None:
        # Everything queued so far goes out before the close frame, in one write.
        queued = self.writer.drain()
        self.writer.close()
        queued.append(frame)
        try:
            self.transport.write(b"".join(queued))
        except Exception:  # the socket is already gone
            logger.debug("close frame not written", exc_info=True)

    def _close_transport(self, flush: bool = False) -> None:
        if self.state == CLOSED:
            return
        if flush:
            queued = self.writer.drain()
            if queued:
                self.transport.write(b"".join(queued))
        self.writer.close()
        self.transport.close()

    def abort(self) -> None:
        """Drop the TCP connection at once."""
        if self.state != CLOSED:
            self.transport.abort()

    def _writer_failed(self, reason: int) -> None:
        if self.state != OPEN:
            self.abort()
            return
        self.handler.on_writer_failure(reason)
