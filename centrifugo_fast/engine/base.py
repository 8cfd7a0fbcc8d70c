"""Engine interfaces (design.md §7): Broker and the event handler brokers deliver to."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from .types import ClientInfo, Publication, PublishResult


class PublishOptions(NamedTuple):
    """Per-publish options the broker needs."""

    info: ClientInfo | None = None
    tags: dict[str, str] | None = None
    data_is_json: bool = True


class BrokerEventHandler(Protocol):
    """Receives what brokers deliver (the Node implements it)."""

    def handle_publication(self, channel: str, pub: Publication) -> None: ...


class Broker(Protocol):
    """Publishes into channels and tracks this node's interest in them."""

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> PublishResult: ...

    async def subscribe(self, channel: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def close(self) -> None: ...
