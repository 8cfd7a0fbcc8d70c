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
from ..codes import (
    DISCONNECT_SHUTDOWN,
    ERROR_BAD_REQUEST,
    ERROR_UNRECOVERABLE_POSITION,
    UNSUBSCRIBE_SERVER,
    Disconnect,
)
from ..config.schema import Config
from ..engine.base import EngineUnavailable, HistoryFilter, PublishOptions
from ..engine.factory import create_engine
from ..engine.types import ClientInfo, Publication, PublishResult, StreamPosition
from ..errors import ReplyErrorException
from .access import SubscriptionOptions, has_history, namespace_defaults, with_overrides
from .channels import ChannelRules
from .control import (
    NODE_INFO_INTERVAL,
    NODE_TTL,
    ControlCommand,
    DisconnectUser,
    NodeAnnouncement,
    NodeInfo,
    RefreshUser,
    SubscribeUser,
    UnsubscribeUser,
    decode as decode_control,
    encode as encode_control,
)
from .eager import run_eagerly
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
#: An observer of a channel's publications (the admin live tail): (channel, publication).
Tap = Callable[[str, Publication], None]


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
        self.broker, self.presence_manager = create_engine(config, self, self.loop)
        #: Other live nodes by uid: (what they announced, loop time seen).
        self.nodes: dict[str, tuple[NodeInfo, float]] = {}
        self._announce_handle: asyncio.TimerHandle | None = None
        self.timers = TimerWheel(self.loop)
        self.flush_scheduler = FlushScheduler(self.loop.call_soon)
        self.channels = ChannelRules(
            config.channel, config.client.subscribe_to_user_personal_channel
        )
        self._make_verifiers(config)
        self.rpc_handlers: dict[str, RPCHandler] = {}
        self.message_handler: MessageHandler | None = None
        #: Publication observers by channel; they keep the broker subscribed like subscribers.
        self._taps: dict[str, list[Tap]] = {}
        self.closing = False

    def _make_verifiers(self, config: Config) -> None:
        skip = config.client.insecure_skip_token_signature_verify
        self.token_verifier = TokenVerifier(config.client.token, skip_signature=skip)
        sub_cfg = config.client.subscription_token
        self.subscription_token_verifier = (
            TokenVerifier(sub_cfg, "client.subscription_token", skip_signature=skip)
            if sub_cfg.enabled
            else self.token_verifier
        )

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
        self._make_verifiers(config)

    # ---- publishing ----

    async def publish(
        self,
        channel: str,
        data: bytes,
        *,
        info: ClientInfo | None = None,
        tags: dict[str, str] | None = None,
        data_is_json: bool = True,
        skip_history: bool = False,
        idempotency_key: str = "",
        delta: bool = False,
    ) -> PublishResult:
        """Publish into `channel` (kept in history when its namespace has history)."""
        opts = self.channels.options(channel)
        keep = has_history(opts) and not skip_history
        return await self.broker.publish(
            channel,
            data,
            PublishOptions(
                info=info,
                tags=tags,
                data_is_json=data_is_json,
                history_size=opts.history_size if keep else 0,
                history_ttl=float(opts.history_ttl) if keep else 0.0,
                history_meta_ttl=float(opts.history_meta_ttl),
                idempotency_key=idempotency_key,
                use_delta=delta or opts.delta_publish,
            ),
        )

    def handle_publication(self, channel: str, pub: Publication) -> None:
        """Broker callback: fan a publication out to this node's subscribers."""
        self.hub.broadcast_publication(channel, pub)
        if self._taps:
            taps = self._taps.get(channel)
            if taps:
                self._call_taps(channel, pub, taps)

    def handle_join(self, channel: str, info: ClientInfo) -> None:
        """Broker callback: a connection joined `channel` somewhere."""
        self.hub.broadcast_join(channel, info)

    def handle_leave(self, channel: str, info: ClientInfo) -> None:
        """Broker callback: a connection left `channel` somewhere."""
        self.hub.broadcast_leave(channel, info)

    # ---- history ----

    async def history(
        self,
        channel: str,
        *,
        since: StreamPosition | None = None,
        limit: int = 0,
        reverse: bool = False,
    ) -> tuple[list[Publication], StreamPosition]:
        """Publications and the current top; 112 when `since` names another epoch."""
        if reverse and since is not None and since.offset == 0:
            raise ReplyErrorException(ERROR_BAD_REQUEST)
        meta_ttl = float(self.channels.options(channel).history_meta_ttl)
        pubs, top = await self.broker.history(
            channel, HistoryFilter(since, limit, reverse), meta_ttl
        )
        if since is not None and since.epoch and since.epoch != top.epoch:
            raise ReplyErrorException(ERROR_UNRECOVERABLE_POSITION)
        return pubs, top

    async def stream_top(self, channel: str) -> StreamPosition:
        """The channel's current stream position (creating its meta if missing)."""
        return (await self.history(channel))[1]

    async def remove_history(self, channel: str) -> None:
        """Drop a channel's retained publications; the stream position stays."""
        await self.broker.remove_history(channel)

    async def recover(
        self, channel: str, offset: int, epoch: str, mode: str
    ) -> tuple[list[Publication], StreamPosition, bool]:
        """Missed publications since (offset, epoch): (publications, top, recovered).

        Stream mode returns every missed publication or nothing (no partial ranges,
        client-protocol §7.3); cache mode returns at most the latest one.
        """
        meta_ttl = float(self.channels.options(channel).history_meta_ttl)
        if mode == "cache":
            latest, top = await self.broker.history(channel, HistoryFilter(None, 1, True), meta_ttl)
            same_state = offset > 0 and offset == top.offset and epoch == top.epoch
            if not latest:
                return [], top, same_state
            recovered = latest[0].offset == top.offset
            if recovered and not same_state:
                return latest, top, True
            return [], top, recovered
        limit = self.config.client.recovery_max_publication_limit or -1
        pubs, top = await self.broker.history(
            channel, HistoryFilter(StreamPosition(offset, epoch), limit, False), meta_ttl
        )
        if epoch and epoch != top.epoch:
            return [], top, False
        if not pubs:
            return [], top, top.offset == offset
        recovered = pubs[0].offset == offset + 1 and pubs[-1].offset == top.offset
        return (pubs if recovered else []), top, recovered

    # ---- presence and join/leave ----

    async def add_presence(self, channel: str, client_id: str, info: ClientInfo) -> None:
        """Record a connection in the channel's presence."""
        await self.presence_manager.add_presence(channel, client_id, info)

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None:
        """Remove a connection from the channel's presence."""
        await self.presence_manager.remove_presence(channel, client_id, user)

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """Connections present in the channel, by client id."""
        return await self.presence_manager.presence(channel)

    async def presence_stats(self, channel: str) -> tuple[int, int]:
        """(connections, distinct users) present in the channel."""
        return await self.presence_manager.presence_stats(channel)

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        """Announce that a connection joined the channel."""
        await self.broker.publish_join(channel, info)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        """Announce that a connection left the channel."""
        await self.broker.publish_leave(channel, info)

    # ---- subscriptions ----

    async def begin_subscription(self, channel: str, client: Client) -> None:
        """Start holding the channel's publications for `client`; make sure the broker
        delivers the channel here before its stream position is read."""
        if self.hub.begin_subscription(channel, client):
            try:
                await self.broker.subscribe(channel)
            except BaseException:
                self.hub.take_pending(channel, client)
                raise

    async def cancel_subscription(self, channel: str, client: Client) -> None:
        """Abandon a subscription being set up."""
        self.hub.take_pending(channel, client)
        if not self._interested(channel):
            await self.broker.unsubscribe(channel)

    async def remove_subscription(self, channel: str, client: Client) -> None:
        """Remove `client` from `channel`; release the broker subscription when empty."""
        self.hub.take_pending(channel, client)
        self.hub.remove_subscription(channel, client)
        if not self._interested(channel):
            await self.broker.unsubscribe(channel)

    def _interested(self, channel: str) -> bool:
        return self.hub.is_interested(channel) or channel in self._taps

    # ---- observers ----

    async def add_tap(self, channel: str, tap: Tap) -> None:
        """Call `tap` with each publication of `channel` (an observer: not a subscriber, so
        never in presence nor in the node's counts); the broker delivers the channel here."""
        taps = self._taps.get(channel)
        if taps is not None:
            taps.append(tap)
            return
        first = not self.hub.is_interested(channel)
        self._taps[channel] = [tap]
        if first:
            try:
                await self.broker.subscribe(channel)
            except BaseException:
                await self.remove_tap(channel, tap)
                raise

    async def remove_tap(self, channel: str, tap: Tap) -> None:
        """Stop calling `tap`; release the broker subscription when nobody else needs it."""
        taps = self._taps.get(channel)
        if taps is None or tap not in taps:
            return
        taps.remove(tap)
        if not taps:
            del self._taps[channel]
            if not self.hub.is_interested(channel):
                await self.broker.unsubscribe(channel)

    def _call_taps(self, channel: str, pub: Publication, taps: list[Tap]) -> None:
        for tap in list(taps):
            try:
                tap(channel, pub)
            except Exception:
                logger.exception("publication observer of %r failed", channel)

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

    # ---- cluster ----

    def info(self) -> NodeInfo:
        """This node's current statistics."""
        hub = self.hub
        return NodeInfo(
            uid=self.id,
            name=self.name,
            version=f"{self.version} centrifugo-fast",
            num_clients=hub.num_clients,
            num_users=hub.num_users,
            num_channels=hub.num_channels,
            num_subs=hub.num_subscriptions,
            uptime=self.uptime(),
        )

    def cluster_info(self) -> list[NodeInfo]:
        """Every live node, this one first."""
        now = self.loop.time()
        others = [info for uid, (info, seen) in self.nodes.items() if now - seen < NODE_TTL]
        return [self.info(), *others]

    def subscribed_channels(self) -> list[str]:
        """Channels with local subscribers or observers (a broker resubscribes them after
        reconnecting)."""
        channels = [channel for channel, _ in self.hub.channels()]
        channels += [channel for channel in self._taps if not self.hub.num_subscribers(channel)]
        return channels

    async def send_control(self, command: ControlCommand) -> None:
        """Send a control command to every node, this one included."""
        await self.broker.publish_control(encode_control(command))

    def handle_control(self, data: bytes) -> None:
        """Broker callback: apply a control command from any node."""
        try:
            command = decode_control(data)
        except Exception:
            logger.warning("dropped a malformed control message")
            return
        if isinstance(command, NodeAnnouncement):
            if command.info.uid != self.id:
                self.nodes[command.info.uid] = (command.info, self.loop.time())
        elif isinstance(command, DisconnectUser):
            self.disconnect_user(
                command.user,
                Disconnect(command.code, command.reason),
                client=command.client,
                session=command.session,
                whitelist=frozenset(command.whitelist),
            )
        elif isinstance(command, UnsubscribeUser):
            self.unsubscribe_user(
                command.user, command.channel, client=command.client, session=command.session
            )
        elif isinstance(command, SubscribeUser):
            options = with_overrides(
                namespace_defaults(self.channels.options(command.channel)), command.override
            )
            run_eagerly(
                self.subscribe_user(
                    command.user,
                    command.channel,
                    options,
                    client=command.client,
                    session=command.session,
                    chan_info=command.chan_info,
                    data=command.data,
                    expire_at=command.expire_at,
                ),
                self.loop,
            )
        elif isinstance(command, RefreshUser):
            self.refresh_user(
                command.user,
                client=command.client,
                session=command.session,
                expired=command.expired,
                expire_at=command.expire_at or None,
                info=command.info,
            )

    def _announce(self) -> None:
        self._announce_handle = self.loop.call_later(NODE_INFO_INTERVAL, self._announce)

        async def send() -> None:
            try:
                await self.send_control(NodeAnnouncement(info=self.info()))
            except EngineUnavailable:
                logger.debug("node announcement not sent: engine unavailable")

        run_eagerly(send(), self.loop)

    # ---- lifecycle ----

    async def start(self) -> None:
        """Connect the engine and start announcing this node."""
        await self.broker.start()
        self._announce()

    async def shutdown(self) -> None:
        """Disconnect every client with 3001 (shutdown, reconnect allowed) and stop."""
        if self.closing:
            return
        self.closing = True
        clients = self.hub.clients()
        for client in clients:
            client.disconnect(DISCONNECT_SHUTDOWN)
        logger.info("node %s shut down, %d clients disconnected", self.name, len(clients))
        if self._announce_handle is not None:
            self._announce_handle.cancel()
        await self.broker.close()
