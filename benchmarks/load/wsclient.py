"""One generator WebSocket connection: handshake, connect, subscribe, then count deliveries.

Frames are parsed by centrifugo_fast's own frame parser twin (compiled when built) in client
mode (unmasked server frames). Received publications are never decoded, only counted and
timed (see `wire`), so one process keeps thousands of connections fed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from centrifugo_fast.protocol.frames import FrameParser

from . import wire

_MAX_MESSAGE = 16 * 1024 * 1024
_HANDSHAKE_LIMIT = 16384
#: Seconds a handshake+connect or a subscribe may take before the client gives up.
_CALL_TIMEOUT = 30.0
# Close with RST: thousands of short-lived connections must not park ports in TIME_WAIT.
_LINGER_RST = struct.pack("ii", 1, 0)


class ProtocolFailure(Exception):
    """The server answered with an error, closed, or broke the protocol."""


@dataclass(slots=True)
class Tally:
    """Counters shared by every connection of a scenario."""

    delivered: int = 0
    latencies: list[int] | None = None
    disconnects: dict[int, int] = field(default_factory=dict)
    pings: int = 0

    def disconnected(self, code: int) -> None:
        """Count one connection lost with `code` (1006 when the socket just closed)."""
        self.disconnects[code] = self.disconnects.get(code, 0) + 1


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how to connect."""

    host: str
    port: int
    path: str
    protobuf: bool

    @classmethod
    def parse(cls, url: str, protobuf: bool) -> Target:
        """Build a target from ws://host:port/path."""
        parts = urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname:
            raise ValueError(f"expected ws://HOST:PORT/PATH, got {url!r}")
        return cls(parts.hostname, parts.port or 80, parts.path or "/", protobuf)


def mask_frame(opcode: int, payload: bytes) -> bytes:
    """A final client frame with a random mask, as RFC 6455 §5.3 requires."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    if not n:
        return header + key
    stream = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return header + key + masked


def upgrade_request(target: Target) -> bytes:
    """The HTTP/1.1 WebSocket upgrade request for `target`."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {target.path} HTTP/1.1",
        f"Host: {target.host}:{target.port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if target.protobuf:
        lines.append("Sec-WebSocket-Protocol: centrifuge-protobuf")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect_frame(target: Target, token: str) -> bytes:
    """The masked connect command frame."""
    if target.protobuf:
        return mask_frame(0x2, wire.pb_connect(1, token))
    return mask_frame(0x1, wire.json_connect(1, token))


class WsClient(asyncio.BufferedProtocol):
    """A client connection driven by asyncio; see the module docstring."""

    def __init__(self, target: Target, tally: Tally) -> None:
        self.target = target
        self.tally = tally
        self.transport: asyncio.Transport | None = None
        self._opcode = 0x2 if target.protobuf else 0x1
        self._handshake = bytearray()
        self._hs_buf = bytearray(4096)
        self._hs_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parser: Any = None
        self._pending: dict[int, asyncio.Future[wire.Reply]] = {}
        self._next_id = 0
        self.closed = False
        self.close_code = 0

    # -- asyncio -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
        self.transport.write(upgrade_request(self.target))

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._parser is not None:
            buf: memoryview = self._parser.get_buffer(sizehint)
            return buf
        return memoryview(self._hs_buf)

    def buffer_updated(self, nbytes: int) -> None:
        if self._parser is not None:
            self._parser.buffer_updated(nbytes)
            return
        self._handshake += self._hs_buf[:nbytes]
        end = self._handshake.find(b"\r\n\r\n")
        if end < 0:
            if len(self._handshake) > _HANDSHAKE_LIMIT:
                self._fail("handshake response too large")
            return
        head = bytes(self._handshake[:end])
        rest = bytes(self._handshake[end + 4 :])
        self._handshake = bytearray()
        if not head.startswith(b"HTTP/1.1 101"):
            status = head.split(b"\r\n", 1)[0].decode(errors="replace")
            self._fail(f"handshake refused: {status}")
            return
        self._parser = FrameParser(self, _MAX_MESSAGE, require_mask=False)
        if not self._hs_done.done():
            self._hs_done.set_result(None)
        if rest:
            self._parser.feed_data(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self.tally.disconnected(self.close_code or 1006)
        self._fail_pending("connection lost")
        if not self._hs_done.done():
            self._hs_done.set_exception(ProtocolFailure("connection lost during handshake"))

    # -- frame parser sink ---------------------------------------------------------------------

    def on_message(self, opcode: int, data: memoryview) -> None:
        frame = bytes(data)
        tally = self.tally
        n = wire.stamps(frame, time.perf_counter_ns(), tally.latencies)
        tally.delivered += n
        if self.target.protobuf:
            if n and wire.pb_item_count(frame) == n:
                return
            replies = wire.pb_replies(frame)
        else:
            if n and frame.count(b"\n") + 1 == n:
                return
            replies = wire.json_replies(frame)
        for reply in replies:
            self._on_reply(reply)

    def on_ping(self, payload: bytes) -> None:
        self._send(0xA, payload)

    def on_pong(self, payload: bytes) -> None:
        pass

    def on_close(self, code: int, reason: str) -> None:
        self.close_code = code
        self._send(0x8, code.to_bytes(2, "big") if code else b"")
        self.abort()

    def on_protocol_error(self, code: int, reason: str) -> None:
        self.close_code = code
        self.abort()

    # -- protocol ------------------------------------------------------------------------------

    def _on_reply(self, reply: wire.Reply) -> None:
        if reply.ping:
            self.tally.pings += 1
            self._send(self._opcode, wire.PB_PONG if self.target.protobuf else wire.JSON_PONG)
            return
        if reply.disconnect is not None:
            self.close_code = reply.disconnect[0]
            self.abort()
            return
        future = self._pending.pop(reply.id, None)
        if future is not None and not future.done():
            future.set_result(reply)

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(mask_frame(opcode, payload))

    async def _call(self, encode_json: bytes, encode_pb: bytes, cmd_id: int) -> wire.Reply:
        future: asyncio.Future[wire.Reply] = asyncio.get_running_loop().create_future()
        self._pending[cmd_id] = future
        self._send(self._opcode, encode_pb if self.target.protobuf else encode_json)
        reply = await future
        if reply.error is not None:
            raise ProtocolFailure(f"error {reply.error[0]}: {reply.error[1]}")
        return reply

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def connect(self, token: str) -> None:
        """Finish the handshake and send connect; raise ProtocolFailure on refusal."""
        await self._hs_done
        cmd_id = self._id()
        await self._call(wire.json_connect(cmd_id, token), wire.pb_connect(cmd_id, token), cmd_id)

    async def subscribe(self, channel: str) -> None:
        """Subscribe to `channel`; raise ProtocolFailure on refusal."""
        cmd_id = self._id()
        async with asyncio.timeout(_CALL_TIMEOUT):
            await self._call(
                wire.json_subscribe(cmd_id, channel), wire.pb_subscribe(cmd_id, channel), cmd_id
            )

    def hand_over(self) -> int:
        """Give the connection's socket away: a duplicate descriptor the caller now owns.

        The transport is aborted: its descriptor closes on the next loop turn, and the
        socket stays open through the duplicate.
        """
        transport = self.transport
        assert transport is not None
        transport.pause_reading()
        fd = os.dup(transport.get_extra_info("socket").fileno())
        self.closed = True  # what happens to the socket from now on is not ours to count
        transport.abort()
        return fd

    def abort(self) -> None:
        """Drop the connection at once (RST: no TIME_WAIT left on the generator's ports)."""
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, message: str) -> None:
        if not self._hs_done.done():
            self._hs_done.set_exception(ProtocolFailure(message))
        self.abort()

    def _fail_pending(self, message: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ProtocolFailure(message))


async def open_client(target: Target, tally: Tally, token: str) -> WsClient:
    """Connect a client and send connect; the caller subscribes."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: WsClient(target, tally), target.host, target.port
    )
    try:
        async with asyncio.timeout(_CALL_TIMEOUT):
            await client.connect(token)
    except BaseException:
        client.abort()
        raise
    return client
