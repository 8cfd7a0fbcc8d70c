"""The memory engine: one process, delivery is a direct call into the node."""

from __future__ import annotations

import time

from .base import BrokerEventHandler, PublishOptions
from .types import Publication, PublishResult


class MemoryBroker:
    """Broker for a single node: publish hands the publication straight to the handler."""

    def __init__(self, handler: BrokerEventHandler) -> None:
        self._handler = handler

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> PublishResult:
        """Deliver `data` to the channel's subscribers on this node."""
        pub = Publication(
            data=data,
            info=opts.info,
            tags=opts.tags,
            time=int(time.time() * 1000),
            data_is_json=opts.data_is_json,
        )
        self._handler.handle_publication(channel, pub)
        return PublishResult()

    async def subscribe(self, channel: str) -> None:
        """Nothing to do: every publication is local."""

    async def unsubscribe(self, channel: str) -> None:
        """Nothing to do: every publication is local."""

    async def close(self) -> None:
        """Nothing to release."""
