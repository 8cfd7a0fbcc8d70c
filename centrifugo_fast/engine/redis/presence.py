"""RedisPresenceManager: presence in a HASH (client -> ClientInfo) and a ZSET of expiry times.

Entries expire `presence_ttl` after their last add (engine.md §2.7); expired ones are dropped
when the channel's presence is read. Each node therefore re-adds the presence of its
connections every `client.presence_update_interval` (27 s; `Node.update_presence`). With
`presence_user_mapping` a per-user pair of keys makes `presence_stats` O(1).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ..base import EngineUnavailable
from ..types import ClientInfo
from . import scripts
from .keys import KeyScheme
from .shard import RedisShard
from .wire import WireError, decode_client_info, encode_client_info


class RedisPresenceManager:
    """Presence over the same shards (and channel-to-shard mapping) as the broker."""

    def __init__(
        self,
        shards: list[RedisShard],
        schemes: list[KeyScheme],
        index: Callable[[str], int],
        ttl: float,
        user_mapping: bool,
    ) -> None:
        self.shards = shards
        self.schemes = schemes
        self._index = index
        self.ttl = ttl
        self._ttl_s = max(1, math.ceil(ttl))
        self.user_mapping = user_mapping

    def _keys(self, channel: str) -> tuple[RedisShard, list[str]]:
        i = self._index(channel)
        scheme = self.schemes[i]
        return self.shards[i], [
            scheme.presence_expire(channel),
            scheme.presence_data(channel),
            scheme.presence_user_expire(channel),
            scheme.presence_user_clients(channel),
        ]

    async def add_presence(self, channel: str, client_id: str, info: ClientInfo) -> None:
        """Add or refresh one connection's entry for another `presence_ttl`."""
        shard, keys = self._keys(channel)
        await shard.script(
            scripts.PRESENCE_ADD,
            keys,
            [
                self._ttl_s,
                repr(time.time() + self.ttl),
                client_id,
                encode_client_info(info),
                info.user,
                "1" if self.user_mapping else "0",
            ],
        )

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None:
        """Remove one connection's entry."""
        shard, keys = self._keys(channel)
        await shard.script(
            scripts.PRESENCE_REMOVE, keys, [client_id, user, "1" if self.user_mapping else "0"]
        )

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """Live entries of the channel, by client id."""
        shard, keys = self._keys(channel)
        flat = await shard.script(scripts.PRESENCE_GET, keys[:2], [repr(time.time())])
        result: dict[str, ClientInfo] = {}
        try:
            for i in range(0, len(flat), 2):
                result[flat[i].decode()] = decode_client_info(flat[i + 1])
        except (WireError, UnicodeDecodeError) as exc:
            raise EngineUnavailable(f"redis: bad presence entry in {channel!r}: {exc}") from exc
        return result

    async def presence_stats(self, channel: str) -> tuple[int, int]:
        """(connections, distinct users) present in the channel."""
        if self.user_mapping:
            shard, keys = self._keys(channel)
            clients, users = await shard.script(scripts.PRESENCE_STATS, keys, [repr(time.time())])
            return int(clients), int(users)
        entries = await self.presence(channel)
        return len(entries), len({info.user for info in entries.values()})
