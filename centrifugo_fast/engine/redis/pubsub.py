"""One shard's PUB/SUB connection: subscribe, receive, reconnect (engine.md §2.6).

The connection is our own asyncio protocol over hiredis' reply parser rather than redis-py's
PubSub: a socket read may carry hundreds of messages and each is dispatched straight from
`data_received`, in arrival order (so per-channel order is Redis' order). Subscribes issued in
one loop turn go out as one SUBSCRIBE and callers wait for Redis' confirmation.

The loop reconnects forever with a short pause. After (re)connecting it subscribes the
control channels and every channel this node is interested in, and only then accepts new
subscribes. A liveness probe (publish to the connection's own service channel when nothing
arrived for a while) restarts a connection that silently stopped receiving, e.g. one left on
a demoted master after a Sentinel failover; with Sentinel the master is also re-checked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import hiredis

from ..base import EngineUnavailable
from .shard import RedisShard

logger = logging.getLogger("centrifugo_fast.redis")

#: Pause before reconnecting a PUB/SUB connection.
RECONNECT_PAUSE = 0.25
#: Channels per SUBSCRIBE / UNSUBSCRIBE command.
SUBSCRIBE_BATCH = 512
#: Nothing received for this long: publish a probe; still nothing a period later: reconnect.
PROBE_INTERVAL = 30.0
#: How often a Sentinel shard checks that its PUB/SUB connection is still on the master.
MASTER_CHECK_INTERVAL = 5.0

OnMessage = Callable[[bytes, bytes], None]


class _Protocol(asyncio.Protocol):
    """Parses replies; dispatches messages; matches subscribe confirmations and replies."""

    def __init__(self, on_message: OnMessage, loop: asyncio.AbstractEventLoop) -> None:
        self._reader = hiredis.Reader()
        self._on_message = on_message
        self.transport: asyncio.Transport | None = None
        #: Replies to plain commands (handshake), in order.
        self.replies: deque[asyncio.Future[Any]] = deque()
        #: Subscribe confirmations awaited, by PUB/SUB channel name.
        self.pending: dict[bytes, asyncio.Future[None]] = {}
        self.lost: asyncio.Future[None] = loop.create_future()
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, *args: bytes | str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(hiredis.pack_command(cast(Any, args)))

    def command(self, *args: bytes | str) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = self.lost.get_loop().create_future()
        self.replies.append(fut)
        self.send(*args)
        return fut

    def data_received(self, data: bytes) -> None:
        self.received += 1
        reader = self._reader
        reader.feed(data)
        on_message = self._on_message
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError:
                logger.error("redis PUB/SUB: protocol error, reconnecting")
                self.close()
                return
            if reply is False:
                return
            if type(reply) is list and reply:
                kind = reply[0]
                if kind == b"message":
                    try:
                        on_message(reply[1], reply[2])
                    except Exception:
                        logger.exception("redis PUB/SUB: failed to handle a message")
                    continue
                if kind == b"subscribe":
                    fut = self.pending.pop(reply[1], None)
                    if fut is not None and not fut.done():
                        fut.set_result(None)
                    continue
                if kind in (b"unsubscribe", b"pong"):
                    continue
            if self.replies:
                fut = self.replies.popleft()
                if fut.done():
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    fut.set_exception(EngineUnavailable(f"redis: {reply}"))
                else:
                    fut.set_result(reply)
            else:
                logger.error("redis PUB/SUB: unexpected reply %r, reconnecting", reply)
                self.close()
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        error = EngineUnavailable("redis PUB/SUB connection lost")
        for fut in [*self.replies, *self.pending.values()]:
            if not fut.done():
                fut.set_exception(error)
        self.replies.clear()
        self.pending.clear()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class PubSubConnection:
    """The PUB/SUB connection of one shard, kept up by `run()`."""

    def __init__(
        self,
        shard: RedisShard,
        on_message: OnMessage,
        fixed_names: list[bytes],
        interested: Callable[[], list[bytes]],
        probe_name: bytes,
    ) -> None:
        self.shard = shard
        self.loop = shard.loop
        self._on_message = on_message
        self._fixed = fixed_names
        self._interested = interested
        self._probe_name = probe_name
        self._proto: _Protocol | None = None
        #: Set while connected with every channel resubscribed: new subscribes allowed.
        self._available = asyncio.Event()
        self._waiters: list[asyncio.Future[None]] = []
        #: Set once the first connection attempt finished, successfully or not.
        self.started = asyncio.Event()
        self._batch: dict[bytes, asyncio.Future[None]] = {}
        self._closed = False
        self._last_error = ""
        self.connects = 0
        #: Connections lost or refused (read by the Prometheus endpoint).
        self.errors = 0

    # ---- node-level subscriptions ----

    @property
    def available(self) -> bool:
        """Connected, with every channel resubscribed: new subscribes are accepted."""
        return self._available.is_set()

    async def wait_available(self, timeout: float) -> None:
        """Wait up to `timeout` for a (re)connection; EngineUnavailable if it does not come.

        Plain futures and timers only: callers may run outside a task (core/eager.py).
        """
        if self._available.is_set():
            return
        fut: asyncio.Future[None] = self.loop.create_future()
        self._waiters.append(fut)
        timer = self.loop.call_later(timeout, _give_up, fut)
        try:
            await fut
        finally:
            timer.cancel()
            if fut in self._waiters:
                self._waiters.remove(fut)

    def subscribe(self, name: bytes) -> asyncio.Future[None]:
        """Ask for a subscription; the future completes on Redis' confirmation."""
        proto = self._proto
        if proto is None or not self._available.is_set():
            raise EngineUnavailable("redis PUB/SUB connection is (re)connecting")
        fut = self._batch.get(name) or proto.pending.get(name)
        if fut is not None:
            return fut
        fut = self.loop.create_future()
        if not self._batch:
            self.loop.call_soon(self._flush)
        self._batch[name] = fut
        return fut

    def _flush(self) -> None:
        batch, self._batch = self._batch, {}
        proto = self._proto
        if proto is None or proto.lost.done():
            error = EngineUnavailable("redis PUB/SUB connection lost")
            for fut in batch.values():
                if not fut.done():
                    fut.set_exception(error)
            return
        proto.pending.update(batch)
        names = list(batch)
        for i in range(0, len(names), SUBSCRIBE_BATCH):
            proto.send(b"SUBSCRIBE", *names[i : i + SUBSCRIBE_BATCH])

    def unsubscribe(self, names: list[bytes]) -> None:
        """Drop subscriptions (no confirmation awaited; a lost connection drops them all)."""
        proto = self._proto
        if proto is None:
            return
        for i in range(0, len(names), SUBSCRIBE_BATCH):
            proto.send(b"UNSUBSCRIBE", *names[i : i + SUBSCRIBE_BATCH])

    def drop_stale(self) -> None:
        """Force a reconnect (used when a subscribe confirmation never came)."""
        if self._proto is not None:
            self._proto.close()

    # ---- the loop ----

    def stop(self) -> None:
        self._closed = True
        if self._proto is not None:
            self._proto.close()

    async def run(self) -> None:
        """Connect, serve, reconnect; until `stop()`."""
        while not self._closed:
            try:
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors += 1
                message = str(exc) or type(exc).__name__
                if message != self._last_error:
                    logger.warning(
                        "redis PUB/SUB %s: %s (reconnecting)", self.shard.spec.describe(), message
                    )
                    self._last_error = message
            finally:
                self._available.clear()
                if self._proto is not None:
                    self._proto.close()
                    self._proto = None
                self.started.set()
            if not self._closed:
                await asyncio.sleep(RECONNECT_PAUSE)

    async def _connect(self) -> tuple[_Protocol, tuple[str, int] | str]:
        spec = self.shard.spec
        address = await self.shard.pubsub_address()
        loop = self.loop

        def factory() -> _Protocol:
            return _Protocol(self._on_message, loop)

        async with asyncio.timeout(spec.connect_timeout):
            if isinstance(address, str):
                _, proto = await loop.create_unix_connection(factory, address)
            else:
                _, proto = await loop.create_connection(factory, address[0], address[1])
        self._proto = proto
        async with asyncio.timeout(spec.io_timeout):
            if spec.password:
                if spec.user:
                    await proto.command(b"AUTH", spec.user, spec.password)
                else:
                    await proto.command(b"AUTH", spec.password)
            if spec.client_name:
                await proto.command(b"CLIENT", b"SETNAME", spec.client_name)
        return proto, address

    async def _serve(self) -> None:
        proto, address = await self._connect()
        names = [*self._fixed, *self._interested()]
        waits = []
        for i in range(0, len(names), SUBSCRIBE_BATCH):
            chunk = names[i : i + SUBSCRIBE_BATCH]
            for name in chunk:
                fut = proto.pending.get(name)
                if fut is None:
                    fut = proto.pending[name] = self.loop.create_future()
                waits.append(fut)
            proto.send(b"SUBSCRIBE", *chunk)
        timeout = self.shard.io_timeout * (1 + len(names) // 20000)
        async with asyncio.timeout(timeout):
            await asyncio.gather(*waits)
        self._available.set()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
        self.connects += 1
        self.started.set()
        if self._last_error or self.connects > 1:
            logger.info(
                "redis PUB/SUB %s: connected, %d channels resubscribed",
                self.shard.spec.describe(),
                len(names) - len(self._fixed),
            )
        self._last_error = ""
        await self._watch(proto, address)

    async def _watch(self, proto: _Protocol, address: tuple[str, int] | str) -> None:
        """Return when the connection is lost or found stale."""
        sentinel = self.shard.sentinel is not None
        tick = min(PROBE_INTERVAL, MASTER_CHECK_INTERVAL) if sentinel else PROBE_INTERVAL
        last_received = proto.received
        last_probe_check = time.monotonic()
        probe_sent = False
        while True:
            await asyncio.wait([proto.lost], timeout=tick)
            if proto.lost.done():
                raise EngineUnavailable("connection lost")
            now = time.monotonic()
            if sentinel:
                try:
                    current = await self.shard.pubsub_address()
                except Exception:
                    current = address  # Sentinel unreachable: nothing to conclude
                if current != address:
                    raise EngineUnavailable(f"master moved to {current}")
            if now - last_probe_check < PROBE_INTERVAL:
                continue
            last_probe_check = now
            if proto.received != last_received:
                last_received = proto.received
                probe_sent = False
                continue
            if probe_sent:
                raise EngineUnavailable("nothing received after a probe: stale connection")
            try:
                await self.shard.publish(self._probe_name, b"probe")
                probe_sent = True
            except EngineUnavailable:
                probe_sent = False


def _give_up(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_exception(EngineUnavailable("redis PUB/SUB connection is (re)connecting"))
