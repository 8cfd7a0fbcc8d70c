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
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

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
from ..metrics import Metrics
from .access import SubscriptionOptions, has_history, namespace_defaults, with_overrides
from .channels import ChannelRules
from .control import (
    NODE_INFO_INTERVAL,
    NODE_TTL,
    ControlCommand,
    DisconnectUser,
    EmulationData,
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
    from .client import Client, Subscription

logger = logging.getLogger("centrifugo_fast")

#: An in-process RPC handler: (client, method, data) -> result data (raw JSON / bytes).
RPCHandler = Callable[["Client", str, bytes], Awaitable[bytes]]
#: An in-process handler of client `send` messages.
MessageHandler = Callable[["Client", bytes], Awaitable[None]]
#: An observer of a channel's publications (the admin live tail): (channel, publication).
Tap = Callable[[str, Publication], None]
#: Receives emulated commands forwarded from another node: (session, command batch).
EmulationHandler = Callable[[str, bytes], None]

#: Centrifugo's `client.presence_update_interval` when the option is 0.
DEFAULT_PRESENCE_UPDATE_INTERVAL = 27.0
#: Presence entries refreshed per step of a presence update; each step waits for its
#: engine calls (one pipelined round trip on Redis) before the next starts, so a node with
#: many connections neither floods the engine nor holds the event loop.
PRESENCE_UPDATE_BATCH = 512


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
        #: Counters for the Prometheus endpoint (gauges are read from the hub).
        self.metrics = Metrics()
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
        #: Engine work started for connections that outlives its caller (presence removal
        #: and leave events of closed subscriptions, the presence update); shutdown waits
        #: for it before closing the broker.
        self._background: set[asyncio.Task[None]] = set()
        self._presence_update: asyncio.Task[None] | None = None
        self._presence_failures = 0
        self._presence_error = ""
        self._emulation_handler: EmulationHandler | None = None

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
        self.metrics.messages_sent["publication"] += 1
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
        metrics = self.metrics
        metrics.publications_received += 1
        # Counted in bulk: the hub returns how many subscribers it visited.
        metrics.publication_pushes += self.hub.broadcast_publication(channel, pub)
        if self._taps:
            taps = self._taps.get(channel)
            if taps:
                self._call_taps(channel, pub, taps)

    def handle_join(self, channel: str, info: ClientInfo) -> None:
        """Broker callback: a connection joined `channel` somewhere."""
        self.metrics.messages_received["join"] += 1
        self.metrics.pushed("push_join", self.hub.broadcast_join(channel, info))

    def handle_leave(self, channel: str, info: ClientInfo) -> None:
        """Broker callback: a connection left `channel` somewhere."""
        self.metrics.messages_received["leave"] += 1
        self.metrics.pushed("push_leave", self.hub.broadcast_leave(channel, info))

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
        self.metrics.messages_sent["join"] += 1
        await self.broker.publish_join(channel, info)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        """Announce that a connection left the channel."""
        self.metrics.messages_sent["leave"] += 1
        await self.broker.publish_leave(channel, info)

    def _presence_interval(self) -> float:
        return float(self.config.client.presence_update_interval) or (
            DEFAULT_PRESENCE_UPDATE_INTERVAL
        )

    def _presence_tick(self) -> None:
        # One timer for the whole node (design.md §5), re-armed on every tick; Centrifugo
        # keeps one per connection instead.
        if self.closing:
            return
        self.timers.call_later(self._presence_interval(), self._presence_tick)
        running = self._presence_update
        if running is not None and not running.done():
            logger.warning("presence update still running after a whole interval; skipped")
            return
        self._presence_update = self.spawn(self.update_presence(), "presence update")

    async def update_presence(self) -> None:
        """Re-add the presence of every local presence-enabled subscription.

        Redis presence entries expire `engine.redis.presence_ttl` after their last add;
        this keeps them alive while the connection stays (run every
        `client.presence_update_interval`). With the memory engine it refreshes the info.
        """
        self._presence_failures = 0
        refresh = self._refresh_presence
        loop = self.loop
        total = 0
        step = 0
        waiting: list[asyncio.Task[None]] = []
        for client in self.hub.clients():
            if self.closing:
                break
            for channel, sub in list(client.subs.items()):
                if not sub.options.presence:
                    continue
                task = run_eagerly(refresh(client, channel, sub), loop)
                if task is not None:
                    waiting.append(task)
                step += 1
            if step >= PRESENCE_UPDATE_BATCH:
                total += step
                step = 0
                if waiting:
                    await asyncio.wait(waiting)
                    waiting = []
                else:
                    await asyncio.sleep(0)  # let other work run between steps
        total += step
        if waiting:
            await asyncio.wait(waiting)
        if self._presence_failures:
            logger.warning(
                "presence update: %d of %d entries not refreshed: %s",
                self._presence_failures,
                total,
                self._presence_error,
            )

    async def _refresh_presence(self, client: Client, channel: str, sub: Subscription) -> None:
        manager = self.presence_manager
        try:
            await manager.add_presence(channel, client.id, client.client_info(sub.chan_info))
            if client.subs.get(channel) is not sub:
                # Unsubscribed (or disconnected) while the add was in flight: its removal
                # may have landed first, which would leave this entry behind.
                await manager.remove_presence(channel, client.id, client.user)
        except EngineUnavailable as exc:
            self._presence_failures += 1
            self._presence_error = str(exc)
        except Exception:
            logger.exception("presence update of %r failed", channel)

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
        self.metrics.messages_sent["control"] += 1
        await self.broker.publish_control(encode_control(command))

    def handle_control(self, data: bytes) -> None:
        """Broker callback: apply a control command from any node."""
        self.metrics.messages_received["control"] += 1
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
            self.spawn(
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
                "server-side subscribe",
            )
        elif isinstance(command, EmulationData):
            if command.node == self.id and self._emulation_handler is not None:
                self._emulation_handler(command.session, command.data)
        elif isinstance(command, RefreshUser):
            self.refresh_user(
                command.user,
                client=command.client,
                session=command.session,
                expired=command.expired,
                expire_at=command.expire_at or None,
                info=command.info,
            )

    def node_alive(self, node_id: str) -> bool:
        """True for this node and for other nodes announced within NODE_TTL."""
        if node_id == self.id:
            return True
        seen = self.nodes.get(node_id)
        return seen is not None and self.loop.time() - seen[1] < NODE_TTL

    def on_emulation(self, handler: EmulationHandler) -> None:
        """Receive emulated commands other nodes forward here: handler(session, batch)."""
        self._emulation_handler = handler

    async def forward_emulation(self, node_id: str, session: str, data: bytes) -> None:
        """Send an emulated connection's command batch to the node holding its stream."""
        command = EmulationData(node=node_id, session=session, data=data)
        await self.broker.publish_control(encode_control(command), node_id)

    def _announce(self) -> None:
        self._announce_handle = self.loop.call_later(NODE_INFO_INTERVAL, self._announce)

        async def send() -> None:
            try:
                await self.send_control(NodeAnnouncement(info=self.info()))
            except EngineUnavailable:
                logger.debug("node announcement not sent: engine unavailable")

        run_eagerly(send(), self.loop)

    # ---- background work ----

    def spawn(
        self, coro: Coroutine[Any, Any, None], what: str = "background work"
    ) -> asyncio.Task[None] | None:
        """Run `coro` now up to its first suspension and the rest in a task that shutdown
        waits for; its failure is logged (never an unretrieved task exception)."""
        try:
            task = run_eagerly(coro, self.loop)
        except EngineUnavailable as exc:
            logger.warning("%s: engine unavailable: %s", what, exc)
            return None
        except Exception:
            logger.exception("%s failed", what)
            return None
        if task is not None:
            self._background.add(task)
            task.add_done_callback(lambda done: self._background_done(done, what))
        return task

    def _background_done(self, task: asyncio.Task[None], what: str) -> None:
        self._background.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, EngineUnavailable):
            logger.warning("%s: engine unavailable: %s", what, exc)
        elif exc is not None:
            logger.error("%s failed", what, exc_info=exc)

    async def _drain_background(self, timeout: float) -> None:
        """Wait up to `timeout` for spawned work (it may spawn more); cancel what is left."""
        deadline = self.loop.time() + timeout
        while self._background:
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(set(self._background), timeout=remaining)
        if self._background:
            logger.warning(
                "%d engine operations unfinished after %.1f s; closing the engine anyway",
                len(self._background),
                timeout,
            )
            for task in list(self._background):
                task.cancel()

    # ---- lifecycle ----

    async def start(self) -> None:
        """Connect the engine, start announcing this node and refreshing presence."""
        await self.broker.start()
        self._announce()
        interval = self._presence_interval()
        ttl = float(self.config.engine.redis.presence_ttl)
        if self.config.engine.type == "redis" and interval >= ttl:
            logger.warning(
                "client.presence_update_interval (%gs) is not below engine.redis.presence_ttl"
                " (%gs): presence entries expire between refreshes",
                interval,
                ttl,
            )
        self.timers.call_later(interval, self._presence_tick)

    async def shutdown(self, timeout: float | None = None) -> None:
        """Disconnect every client with 3001 (shutdown, reconnect allowed), wait up to
        `timeout` (default `shutdown.timeout`) for their presence removal and leave
        events, and stop."""
        if self.closing:
            return
        self.closing = True
        clients = self.hub.clients()
        for client in clients:
            client.disconnect(DISCONNECT_SHUTDOWN)
        logger.info("node %s shut down, %d clients disconnected", self.name, len(clients))
        if self._announce_handle is not None:
            self._announce_handle.cancel()
        if timeout is None:
            timeout = float(self.config.shutdown.timeout)
        await self._drain_background(timeout)
        await self.broker.close()
