"""Build the configured engine (broker + presence manager)."""

from __future__ import annotations

import asyncio

from ..config.schema import Config
from .base import Broker, BrokerEventHandler, PresenceManager
from .memory import MemoryBroker, MemoryPresenceManager


def create_engine(
    config: Config, handler: BrokerEventHandler, loop: asyncio.AbstractEventLoop
) -> tuple[Broker, PresenceManager]:
    """The broker and presence manager for `engine.type`."""
    if config.engine.type == "redis":
        from .redis import create_redis_engine

        return create_redis_engine(config, handler, loop)
    return (
        MemoryBroker(handler, loop, float(config.channel.history_meta_ttl)),
        MemoryPresenceManager(),
    )
