"""Node: one server process; the public Python API for embedding (design.md §1).

The Node owns the hub, the broker, the shared timer wheel and flush scheduler, channel rules
and token verifiers. Transports create Clients bound to it; the HTTP API calls its methods.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .._version import __version__
from ..auth.jwt import TokenVerifier
from ..codes import DISCONNECT_SHUTDOWN
from ..config.schema import Config
from ..engine.base import PublishOptions
from ..engine.memory import MemoryBroker
from ..engine.types import ClientInfo, Publication, PublishResult
from .channels import ChannelRules
from .fanout import FlushScheduler
from .hub import Hub
from .timers import TimerWheel

if TYPE_CHECKING:
    from .client import Client

logger = logging.getLogger("centrifugo_fast")

#: An in-process RPC handler: (client, method, data) -> result data (raw JSON / bytes).
RPCHandler = Callable[["Client", str, bytes], Awaitable[bytes]]
#: An in-process handler of client `send` messages.
MessageHandler = Callable[["Client", bytes], Awaitable[None]]


class Node:
    """One centrifugo-fast server process."""

    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.config = config
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        self.id = str(uuid.uuid4())
        self.name = config.node.name or f"{socket.gethostname()}_{config.http_server.port}"
        self.version = __version__
        self.started_at = time.monotonic()
        self.hub = Hub()
        self.broker = MemoryBroker(self)
        self.timers = TimerWheel(self.loop)
        self.flush_scheduler = FlushScheduler(self.loop.call_soon)
        self.channels = ChannelRules(config.channel)
        self.token_verifier = TokenVerifier(config.client.token)
        sub_cfg = config.client.subscription_token
        self.subscription_token_verifier = (
            TokenVerifier(sub_cfg) if sub_cfg.enabled else self.token_verifier
        )
        self.rpc_handlers: dict[str, RPCHandler] = {}
        self.message_handler: MessageHandler | None = None
        self.closing = False

    # ---- publishing ----

    async def publish(
        self,
        channel: str,
        data: bytes,
        *,
        info: ClientInfo | None = None,
        tags: dict[str, str] | None = None,
        data_is_json: bool = True,
    ) -> PublishResult:
        """Publish `data` into `channel`; subscribers on every node receive it."""
        return await self.broker.publish(
            channel, data, PublishOptions(info=info, tags=tags, data_is_json=data_is_json)
        )

    def handle_publication(self, channel: str, pub: Publication) -> None:
        """Broker callback: fan a publication out to this node's subscribers."""
        self.hub.broadcast_publication(channel, pub)

    # ---- subscriptions ----

    async def add_subscription(self, channel: str, client: Client) -> None:
        """Register `client` in `channel` and make the broker deliver the channel here."""
        if self.hub.add_subscription(channel, client):
            await self.broker.subscribe(channel)

    async def remove_subscription(self, channel: str, client: Client) -> None:
        """Remove `client` from `channel`; release the broker subscription when empty."""
        if self.hub.remove_subscription(channel, client):
            await self.broker.unsubscribe(channel)

    # ---- in-process handlers ----

    def on_rpc(self, method: str, handler: RPCHandler) -> None:
        """Serve client `rpc` calls of `method` with an in-process handler."""
        self.rpc_handlers[method] = handler

    def on_message(self, handler: MessageHandler) -> None:
        """Receive client `send` messages with an in-process handler."""
        self.message_handler = handler

    # ---- introspection ----

    def uptime(self) -> int:
        """Whole seconds since this node started."""
        return int(time.monotonic() - self.started_at)

    # ---- lifecycle ----

    async def shutdown(self) -> None:
        """Disconnect every client with 3001 (shutdown, reconnect allowed) and stop."""
        if self.closing:
            return
        self.closing = True
        clients = self.hub.clients()
        for client in clients:
            client.disconnect(DISCONNECT_SHUTDOWN)
        logger.info("node %s shut down, %d clients disconnected", self.name, len(clients))
        await self.broker.close()
