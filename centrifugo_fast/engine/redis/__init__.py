"""The Redis engine: broker and presence manager over one or more Redis shards."""

from __future__ import annotations

import asyncio

from ...config.schema import Config
from ..base import Broker, BrokerEventHandler, PresenceManager


def create_redis_engine(
    config: Config, handler: BrokerEventHandler, loop: asyncio.AbstractEventLoop
) -> tuple[Broker, PresenceManager]:
    """The Redis broker and presence manager for `config.engine.redis`."""
    raise NotImplementedError("the Redis engine is being built (issue 7)")
