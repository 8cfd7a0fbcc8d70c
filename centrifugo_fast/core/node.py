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

import msgspec

from .._version import __version__
from ..auth.jwt import TokenVerifier
from ..codes import DISCONNECT_SHUTDOWN, UNSUBSCRIBE_SERVER, Disconnect
from ..config.schema import Config
from ..engine.base import PublishOptions
from ..engine.memory import MemoryBroker
from ..engine.types import ClientInfo, Publication, PublishResult
from .access import SubscriptionOptions
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
        self.channels = ChannelRules(
            config.channel, config.client.subscribe_to_user_personal_channel
        )
        self.token_verifier = TokenVerifier(config.client.token)
        sub_cfg = config.client.subscription_token
        self.subscription_token_verifier = (
            TokenVerifier(sub_cfg) if sub_cfg.enabled else self.token_verifier
        )
        self.rpc_handlers: dict[str, RPCHandler] = {}
        self.message_handler: MessageHandler | None = None
        self.closing = False

    def reload(self, config: Config) -> None:
        """Apply new token settings and channel options (SIGHUP); connections stay open."""
        client = msgspec.structs.replace(
            self.config.client,
            token=config.client.token,
            subscription_token=config.client.subscription_token,
        )
        self.config = msgspec.structs.replace(self.config, client=client, channel=config.channel)
        self.channels = ChannelRules(
            config.channel, self.config.client.subscribe_to_user_personal_channel
        )
        self.token_verifier = TokenVerifier(config.client.token)
        sub_cfg = config.client.subscription_token
        self.subscription_token_verifier = (
            TokenVerifier(sub_cfg) if sub_cfg.enabled else self.token_verifier
        )

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

    # ---- acting on users' connections (server API) ----

    def user_connections(self, user: str, client: str = "", session: str = "") -> list[Client]:
        """This node's connections of `user`, narrowed to one client or session if given."""
        return [
            c
            for c in self.hub.user_clients(user)
            if (not client or c.id == client) and (not session or c.session == session)
        ]

    async def subscribe_user(
        self,
        user: str,
        channel: str,
        options: SubscriptionOptions,
        *,
        client: str = "",
        session: str = "",
        chan_info: bytes = b"",
        data: bytes = b"",
        expire_at: int = 0,
    ) -> None:
        """Subscribe a user's connections to `channel` (each gets a subscribe push)."""
        for conn in self.user_connections(user, client, session):
            await conn.subscribe_server_side(
                channel, options, chan_info=chan_info, data=data, expire_at=expire_at
            )

    def unsubscribe_user(
        self, user: str, channel: str, *, client: str = "", session: str = ""
    ) -> None:
        """Unsubscribe a user's connections from `channel` (unsubscribe push 2000)."""
        for conn in self.user_connections(user, client, session):
            conn.unsubscribe_server(channel, UNSUBSCRIBE_SERVER)

    def disconnect_user(
        self,
        user: str,
        disconnect: Disconnect,
        *,
        client: str = "",
        session: str = "",
        whitelist: frozenset[str] = frozenset(),
    ) -> None:
        """Close a user's connections, except whitelisted client ids."""
        for conn in self.user_connections(user, client, session):
            if conn.id not in whitelist:
                conn.disconnect(disconnect)

    def refresh_user(
        self,
        user: str,
        *,
        client: str = "",
        session: str = "",
        expired: bool = False,
        expire_at: int | None = None,
        info: bytes | None = None,
    ) -> None:
        """Expire, re-time or re-label a user's connections."""
        for conn in self.user_connections(user, client, session):
            conn.refresh_server_side(expired=expired, expire_at=expire_at, info=info)

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
