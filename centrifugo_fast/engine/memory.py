"""The memory engine: one process; delivery is a direct call into the node (engine.md §1)."""

from __future__ import annotations

import asyncio
import time

from .base import BrokerEventHandler, HistoryFilter, PublishOptions
from .history import HistoryStore
from .types import ClientInfo, Publication, PublishResult, StreamPosition

#: How often expired streams and idempotency keys are dropped (engine.md §1.2: every second).
EXPIRE_INTERVAL = 1.0


class MemoryBroker:
    """Broker for a single node: history in HistoryStore, publications handed to the node.

    Offsets are assigned and delivered in one synchronous step, so a channel's publications
    reach subscribers in offset order without a per-channel lock.
    """

    def __init__(
        self,
        handler: BrokerEventHandler,
        loop: asyncio.AbstractEventLoop,
        default_meta_ttl: float,
    ) -> None:
        self._handler = handler
        self._loop = loop
        self.store = HistoryStore(time.monotonic, default_meta_ttl)
        self._timer: asyncio.TimerHandle | None = loop.call_later(EXPIRE_INTERVAL, self._expire)

    async def start(self) -> None:
        """Nothing to connect to."""

    async def publish_control(self, data: bytes, node_id: str = "") -> None:
        """The only node is this one: a message for any other node reaches nobody."""
        if not node_id or node_id == self._handler.id:
            self._handler.handle_control(data)

    def _expire(self) -> None:
        # Memory stays bounded even for channels nobody touches again.
        self.store.expire()
        self._timer = self._loop.call_later(EXPIRE_INTERVAL, self._expire)

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> PublishResult:
        """Append to history when enabled, then deliver to this node's subscribers."""
        store = self.store
        if opts.idempotency_key:
            seen = store.idempotent_get(channel, opts.idempotency_key)
            if seen is not None:
                return PublishResult(seen.offset, seen.epoch, suppressed=True)
        pub = Publication(
            data=data,
            info=opts.info,
            tags=opts.tags,
            time=int(time.time() * 1000),
            data_is_json=opts.data_is_json,
            delta=opts.use_delta,
        )
        if opts.history_size > 0 and opts.history_ttl > 0:
            position = store.add(
                channel, pub, opts.history_size, opts.history_ttl, opts.history_meta_ttl
            )
        else:
            position = StreamPosition(0, "")
        if opts.idempotency_key:
            store.idempotent_put(
                channel, opts.idempotency_key, position, opts.idempotent_result_ttl
            )
        self._handler.handle_publication(channel, pub)
        return PublishResult(position.offset, position.epoch)

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        """Deliver a join event to this node's subscribers."""
        self._handler.handle_join(channel, info)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        """Deliver a leave event to this node's subscribers."""
        self._handler.handle_leave(channel, info)

    async def history(
        self, channel: str, flt: HistoryFilter, meta_ttl: float
    ) -> tuple[list[Publication], StreamPosition]:
        """Read a channel's stream (creating its meta if missing) and its current top."""
        return self.store.get(channel, flt.since, flt.limit, flt.reverse, meta_ttl)

    async def remove_history(self, channel: str) -> None:
        """Drop retained publications, keeping the stream position."""
        self.store.remove_history(channel)

    async def subscribe(self, channel: str) -> None:
        """Nothing to do: every publication is local."""

    async def unsubscribe(self, channel: str) -> None:
        """Nothing to do: every publication is local."""

    async def close(self) -> None:
        """Stop the expiry timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class MemoryPresenceManager:
    """Presence in dicts: channel -> client id -> ClientInfo (no TTL: removed explicitly)."""

    def __init__(self) -> None:
        self._channels: dict[str, dict[str, ClientInfo]] = {}

    async def add_presence(self, channel: str, client_id: str, info: ClientInfo) -> None:
        """Add or refresh one connection's entry."""
        self._channels.setdefault(channel, {})[client_id] = info

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None:
        """Remove one connection's entry; an emptied channel is forgotten."""
        entries = self._channels.get(channel)
        if entries is not None:
            entries.pop(client_id, None)
            if not entries:
                del self._channels[channel]

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """A copy of the channel's entries."""
        return dict(self._channels.get(channel, {}))

    async def presence_stats(self, channel: str) -> tuple[int, int]:
        """(connections, distinct users) present in the channel."""
        entries = self._channels.get(channel, {})
        return len(entries), len({info.user for info in entries.values()})

    def __len__(self) -> int:
        return len(self._channels)
