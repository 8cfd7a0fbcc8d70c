"""RedisBroker: publish, history and node-level subscriptions over Redis shards (engine.md §2).

A channel lives on one shard, chosen by jump consistent hash of its name: its PUB/SUB channel,
history stream and meta, idempotency results and presence keys all go there. Publishing with
history is one Lua call that appends to the stream and PUBLISHes, so every node receives a
channel's publications in offset order. Each shard has one PUB/SUB connection per node,
which also carries node-to-node control messages.

Node-level unsubscribes are deferred ("dissolved") by at least `DISSOLVE_DELAY`; a subscribe
of the same channel meanwhile cancels the pending unsubscribe, which damps churn.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Callable

from ..base import BrokerEventHandler, EngineUnavailable, HistoryFilter, PublishOptions
from ..types import ClientInfo, Publication, PublishResult, StreamPosition
from . import scripts
from .keys import KeyScheme, shard_index
from .pubsub import PubSubConnection
from .shard import RedisShard
from .wire import (
    JOIN,
    LEAVE,
    WireError,
    decode_publication,
    encode_publication,
    join_frame,
    leave_frame,
    parse_message,
)

logger = logging.getLogger("centrifugo_fast.redis")

#: A channel's node-level subscription outlives its last subscriber by at least this long.
DISSOLVE_DELAY = 1.0
_DISSOLVE_TICK = 0.25
_MAX_U64 = (1 << 64) - 1
_EPOCH_ALPHABET = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def new_epoch() -> str:
    """8 random letters from a cryptographic RNG (used only if the stream has no epoch)."""
    return bytes(_EPOCH_ALPHABET[b % 52] for b in secrets.token_bytes(8)).decode()


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000)) if seconds > 0 else 0


class RedisBroker:
    """Broker over one or more Redis shards."""

    def __init__(
        self,
        shards: list[RedisShard],
        schemes: list[KeyScheme],
        handler: BrokerEventHandler,
        loop: asyncio.AbstractEventLoop,
        node_id: str,
        default_meta_ttl: float,
    ) -> None:
        self.shards = shards
        self.schemes = schemes
        self._handler = handler
        self._loop = loop
        self.node_id = node_id
        self._default_meta_ttl = default_meta_ttl
        self._index: Callable[[str], int] = (
            (lambda channel: 0)
            if len(shards) == 1
            else functools.lru_cache(maxsize=65536)(
                functools.partial(_shard_of, shards=len(shards))
            )
        )
        #: Channels subscribed in Redis (confirmed), by shard index.
        self._channels: dict[str, int] = {}
        self._inflight: dict[str, asyncio.Future[None]] = {}
        #: PUB/SUB channel name -> channel, for every subscribed or subscribing channel.
        self._names: dict[bytes, str] = {}
        self._dissolving: dict[str, float] = {}
        self._dissolve_queue: deque[tuple[float, str]] = deque()
        self._control_rr = 0
        self.pubsub: list[PubSubConnection] = []
        for i, (shard, scheme) in enumerate(zip(shards, schemes, strict=True)):
            control = {scheme.control.encode(), scheme.node(node_id).encode()}
            service = scheme.service().encode()
            self.pubsub.append(
                PubSubConnection(
                    shard,
                    self._receiver(scheme, control, service),
                    [service, *sorted(control)],
                    functools.partial(self._interested, i),
                    service,
                )
            )
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0

    # ---- lifecycle ----

    async def start(self) -> None:
        """Load scripts, start every PUB/SUB loop and wait for their first connection."""
        for shard in self.shards:
            try:
                await shard.initialize()
            except Exception as exc:
                logger.error("redis %s not available at start: %s", shard.spec.describe(), exc)
        loop = self._loop
        self._tasks = [loop.create_task(conn.run()) for conn in self.pubsub]
        self._tasks.append(loop.create_task(self._dissolver()))
        waits = [loop.create_task(conn.started.wait()) for conn in self.pubsub]
        bound = max(s.spec.connect_timeout + 2 * s.io_timeout for s in self.shards)
        _, pending = await asyncio.wait(waits, timeout=bound)
        for task in pending:
            task.cancel()

    async def close(self) -> None:
        """Stop the loops and close every connection."""
        for conn in self.pubsub:
            conn.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for shard in self.shards:
            try:
                await shard.close()
            except Exception:  # noqa: S110 - closing anyway
                pass

    # ---- receiving ----

    def _receiver(
        self, scheme: KeyScheme, control: set[bytes], service: bytes
    ) -> Callable[[bytes, bytes], None]:
        names = self._names
        handler = self._handler

        def on_message(name: bytes, data: bytes) -> None:
            channel = names.get(name)
            if channel is None:
                if name in control:
                    handler.handle_control(data)
                    return
                if name == service:
                    return  # a liveness probe
                channel = scheme.channel_of(name)
                if channel is None:
                    return
            try:
                kind, value = parse_message(data)
            except (WireError, UnicodeDecodeError) as exc:
                self.dropped += 1
                logger.warning("redis: dropped a malformed message in %r: %s", channel, exc)
                return
            if kind == JOIN:
                assert isinstance(value, ClientInfo)
                handler.handle_join(channel, value)
            elif kind == LEAVE:
                assert isinstance(value, ClientInfo)
                handler.handle_leave(channel, value)
            else:
                assert isinstance(value, Publication)
                handler.handle_publication(channel, value)

        return on_message

    def _interested(self, index: int) -> list[bytes]:
        """PUB/SUB names of every channel of shard `index` this node wants (resubscribe)."""
        channels = self._channels
        for channel in self._handler.subscribed_channels():
            if channel not in channels and channel not in self._inflight:
                channels[channel] = self._index(channel)
        scheme = self.schemes[index]
        names = []
        for channel, shard in channels.items():
            if shard == index:
                name = scheme.pubsub(channel).encode()
                self._names[name] = channel
                names.append(name)
        return names

    # ---- node-level subscriptions ----

    async def subscribe(self, channel: str) -> None:
        """Make sure this node receives `channel`; returns once Redis confirmed it."""
        if self._dissolving.pop(channel, None) is not None:
            return  # its unsubscribe was still pending: it never stopped
        if channel in self._channels:
            return
        index = self._index(channel)
        conn = self.pubsub[index]
        timeout = self.shards[index].io_timeout
        if not conn.available:
            await conn.wait_available(timeout)
            if channel in self._channels:
                return  # resubscribed by the reconnect
        fut = self._inflight.get(channel)
        if fut is None:
            name = self.schemes[index].pubsub(channel).encode()
            fut = conn.subscribe(name)
            self._names[name] = channel
            self._inflight[channel] = fut
            fut.add_done_callback(functools.partial(self._subscribed, channel, name, index))
        # No confirmation in time: the connection is stale; recycling it fails the wait and
        # the reconnect resubscribes what was confirmed. (Timers, not asyncio.timeout: the
        # caller may run outside a task, see core/eager.py.)
        timer = self._loop.call_later(timeout, conn.drop_stale)
        try:
            await asyncio.shield(fut)
        finally:
            timer.cancel()

    def _subscribed(self, channel: str, name: bytes, index: int, fut: asyncio.Future[None]) -> None:
        if self._inflight.get(channel) is fut:
            del self._inflight[channel]
        if not fut.cancelled() and fut.exception() is None:
            self._channels[channel] = index
        elif channel not in self._channels:
            self._names.pop(name, None)

    async def unsubscribe(self, channel: str) -> None:
        """This node lost interest in `channel`: unsubscribe after DISSOLVE_DELAY."""
        if channel in self._dissolving:
            return
        if channel not in self._channels and channel not in self._inflight:
            return
        deadline = self._loop.time() + DISSOLVE_DELAY
        self._dissolving[channel] = deadline
        self._dissolve_queue.append((deadline, channel))

    async def _dissolver(self) -> None:
        while True:
            await asyncio.sleep(_DISSOLVE_TICK)
            try:
                self._dissolve(self._loop.time())
            except Exception:
                logger.exception("redis: dissolving subscriptions failed")

    def _dissolve(self, now: float) -> None:
        queue = self._dissolve_queue
        dissolving = self._dissolving
        by_shard: dict[int, list[bytes]] = {}
        while queue and queue[0][0] <= now:
            deadline, channel = queue.popleft()
            if dissolving.get(channel) != deadline:
                continue  # subscribed again meanwhile
            if channel in self._inflight:
                later = now + DISSOLVE_DELAY
                dissolving[channel] = later
                queue.append((later, channel))
                continue
            del dissolving[channel]
            index = self._channels.pop(channel, None)
            if index is None:
                continue
            name = self.schemes[index].pubsub(channel).encode()
            self._names.pop(name, None)
            by_shard.setdefault(index, []).append(name)
        for index, names in by_shard.items():
            self.pubsub[index].unsubscribe(names)

    def subscribed(self) -> list[str]:
        """Channels subscribed in Redis by this node (for tests and introspection)."""
        return list(self._channels)

    # ---- publishing ----

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> PublishResult:
        """Publish; with history the append and the PUBLISH are one atomic script."""
        pub = Publication(data=data, info=opts.info, tags=opts.tags, time=int(time.time() * 1000))
        index = self._index(channel)
        shard = self.shards[index]
        scheme = self.schemes[index]
        result_ttl = ""
        if opts.idempotency_key and opts.idempotent_result_ttl > 0:
            result_ttl = str(math.ceil(opts.idempotent_result_ttl))
        if opts.history_size > 0 and opts.history_ttl > 0:
            stream = scheme.stream(channel)
            meta_ttl = opts.history_meta_ttl or self._default_meta_ttl
            reply = await shard.script(
                scripts.PUBLISH_HISTORY,
                [
                    stream,
                    scheme.stream_meta(channel),
                    scheme.result(channel, opts.idempotency_key) if result_ttl else stream,
                ],
                [
                    encode_publication(pub, False),
                    opts.history_size,
                    _ms(opts.history_ttl),
                    scheme.pubsub(channel),
                    _ms(meta_ttl),
                    new_epoch(),
                    "publish",
                    result_ttl,
                    "1" if opts.use_delta else "0",
                ],
            )
            return PublishResult(int(reply[0]), _text(reply[1]), bool(reply[2]))
        payload = encode_publication(pub, opts.use_delta)
        if result_ttl:
            seen = await shard.script(
                scripts.PUBLISH_IDEMPOTENT,
                [scheme.result(channel, opts.idempotency_key)],
                [payload, scheme.pubsub(channel), "publish", result_ttl],
            )
            return PublishResult(suppressed=bool(seen))
        await shard.publish(scheme.pubsub(channel), payload)
        return PublishResult()

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        """Tell every node's subscribers of `channel` that a connection joined."""
        index = self._index(channel)
        await self.shards[index].publish(self.schemes[index].pubsub(channel), join_frame(info))

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        """Tell every node's subscribers of `channel` that a connection left."""
        index = self._index(channel)
        await self.shards[index].publish(self.schemes[index].pubsub(channel), leave_frame(info))

    async def publish_control(self, data: bytes, node_id: str = "") -> None:
        """A control message for every node (this one too) or for one node."""
        if node_id:
            # Every node listens to its own channel on every shard; always using the same
            # shard for one target keeps what is sent to it (emulated commands) in order.
            index = self._index(node_id)
            await self.shards[index].publish(self.schemes[index].node(node_id), data)
            return
        index = self._control_rr % len(self.shards)
        self._control_rr += 1
        await self.shards[index].publish(self.schemes[index].control, data)

    # ---- history ----

    async def history(
        self, channel: str, flt: HistoryFilter, meta_ttl: float
    ) -> tuple[list[Publication], StreamPosition]:
        """Publications after/before `flt.since` and the current top (meta created if missing)."""
        since, limit, reverse = flt
        if reverse:
            start = "" if since is None or since.offset <= 0 else str(since.offset - 1)
        else:
            start = str(min(since.offset + 1, _MAX_U64)) if since is not None else "0"
        index = self._index(channel)
        scheme = self.schemes[index]
        reply = await self.shards[index].script(
            scripts.HISTORY,
            [scheme.stream(channel), scheme.stream_meta(channel)],
            [
                "1" if limit != 0 else "0",
                start,
                limit,
                "1" if reverse else "0",
                _ms(meta_ttl or self._default_meta_ttl),
                new_epoch(),
            ],
        )
        top, epoch = int(reply[0]), _text(reply[1])
        pubs = []
        for entry_id, fields in reply[2]:
            offset = int(entry_id.partition(b"-")[0])
            payload = fields[1] if fields and fields[0] == b"d" else b""
            try:
                pubs.append(decode_publication(payload, offset, epoch))
            except WireError as exc:
                raise EngineUnavailable(f"redis: bad history entry in {channel!r}: {exc}") from exc
        return pubs, StreamPosition(top, epoch)

    async def remove_history(self, channel: str) -> None:
        """Drop the stream; its meta (top offset, epoch) stays."""
        index = self._index(channel)
        await self.shards[index].call("DEL", self.schemes[index].stream(channel))


def _shard_of(channel: str, shards: int) -> int:
    return shard_index(channel, shards)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
