"""Engine interfaces (design.md §7): Broker, PresenceManager and the handler brokers deliver to."""

from __future__ import annotations

from typing import NamedTuple, Protocol

from .types import ClientInfo, Publication, PublishResult, StreamPosition

#: How long an idempotency key suppresses a repeated publish (Centrifugo: 5 minutes).
IDEMPOTENT_RESULT_TTL = 300.0


class EngineUnavailable(Exception):
    """The engine's backend (e.g. Redis) cannot serve the call now: a temporary failure.

    Callers answer with the temporary error 100; connected clients stay connected.
    """


class PublishOptions(NamedTuple):
    """Per-publish options the broker needs; history is kept when size and TTL are both > 0."""

    info: ClientInfo | None = None
    tags: dict[str, str] | None = None
    data_is_json: bool = True
    history_size: int = 0
    history_ttl: float = 0.0
    history_meta_ttl: float = 0.0
    idempotency_key: str = ""
    idempotent_result_ttl: float = IDEMPOTENT_RESULT_TTL
    use_delta: bool = False


class HistoryFilter(NamedTuple):
    """Which publications a history read returns (limit -1: all, 0: position only)."""

    since: StreamPosition | None = None
    limit: int = 0
    reverse: bool = False


class BrokerEventHandler(Protocol):
    """Receives what brokers deliver (the Node implements it)."""

    #: The node's id: brokers address node-targeted control messages with it (Redis:
    #: the PUB/SUB channel `<prefix>.node.<id>`).
    id: str

    def handle_publication(self, channel: str, pub: Publication) -> None: ...

    def handle_join(self, channel: str, info: ClientInfo) -> None: ...

    def handle_leave(self, channel: str, info: ClientInfo) -> None: ...

    def handle_control(self, data: bytes) -> None: ...

    def subscribed_channels(self) -> list[str]: ...


class Broker(Protocol):
    """Publishes into channels, keeps their history, tracks this node's interest.

    Also the node-to-node control bus: `publish_control` reaches `handle_control` on every
    node (only this one with the memory engine), or on one node when `node_id` is given.
    """

    async def start(self) -> None: ...

    async def publish_control(self, data: bytes, node_id: str = "") -> None: ...

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> PublishResult: ...

    async def publish_join(self, channel: str, info: ClientInfo) -> None: ...

    async def publish_leave(self, channel: str, info: ClientInfo) -> None: ...

    async def history(
        self, channel: str, flt: HistoryFilter, meta_ttl: float
    ) -> tuple[list[Publication], StreamPosition]: ...

    async def remove_history(self, channel: str) -> None: ...

    async def subscribe(self, channel: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def close(self) -> None: ...


class PresenceManager(Protocol):
    """Who is subscribed to a channel, across nodes."""

    async def add_presence(self, channel: str, client_id: str, info: ClientInfo) -> None: ...

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None: ...

    async def presence(self, channel: str) -> dict[str, ClientInfo]: ...

    async def presence_stats(self, channel: str) -> tuple[int, int]: ...
