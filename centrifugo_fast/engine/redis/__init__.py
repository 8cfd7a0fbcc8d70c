"""The Redis engine: broker and presence manager over one or more Redis shards.

Standalone servers, Sentinel-managed masters and Redis Cluster (classic PUB/SUB) are
supported; several addresses shard channels by jump consistent hash (engine.md §2, §4).
"""

from __future__ import annotations

import asyncio
import uuid

from ...config.schema import Config
from ..base import BrokerEventHandler
from .address import CLUSTER, AddressError, ShardSpec, shard_specs
from .broker import RedisBroker
from .keys import KeyScheme
from .presence import RedisPresenceManager
from .shard import RedisShard

__all__ = [
    "AddressError",
    "RedisBroker",
    "RedisPresenceManager",
    "ShardSpec",
    "create_redis_engine",
    "shard_specs",
]


def create_redis_engine(
    config: Config, handler: BrokerEventHandler, loop: asyncio.AbstractEventLoop
) -> tuple[RedisBroker, RedisPresenceManager]:
    """The Redis broker and presence manager for `config.engine.redis`."""
    redis = config.engine.redis
    specs = shard_specs(redis)
    shards = [RedisShard(spec, i, loop) for i, spec in enumerate(specs)]
    schemes = [KeyScheme(redis.prefix, spec.kind == CLUSTER) for spec in specs]
    # An anonymous handler (never the Node) still gets a channel of its own.
    node_id = handler.id or str(uuid.uuid4())
    broker = RedisBroker(
        shards, schemes, handler, loop, node_id, float(config.channel.history_meta_ttl)
    )
    presence = RedisPresenceManager(
        shards,
        schemes,
        broker._index,
        float(redis.presence_ttl),
        redis.presence_user_mapping,
    )
    return broker, presence
