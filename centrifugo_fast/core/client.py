"""Client: one connection's protocol state machine (spec/client-protocol.md §2.4, §3-5).

Transport-independent: it receives encoded command batches through `handle_data`, writes
encoded replies through its Transport, and is closed by `disconnect`. Deadlines (stale, ping,
pong, expiry) are callbacks on the node's shared timer wheel, never per-connection timers.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable

from .. import codes
from ..auth.jwt import (
    InvalidTokenError,
    ServerSubscription,
    SubscriptionToken,
    TokenExpiredError,
    TokenVerifyUnavailable,
)
from ..codes import Disconnect, ReplyError
from ..engine.base import EngineUnavailable
from ..engine.types import ClientInfo, Publication, StreamPosition
from ..errors import DisconnectException, ReplyErrorException
from ..metrics import command_method
from ..protocol.codec import Codec, CodecError
from ..protocol.codec_json import raw_bytes
from ..protocol.messages import (
    ChannelRequest,
    Command,
    ConnectRequest,
    ConnectResult,
    DisconnectPushMsg,
    EmptyResult,
    ErrorMsg,
    HistoryRequest,
    HistoryResult,
    PresenceResult,
    PresenceStatsResult,
    PublishRequest,
    Push,
    RefreshRequest,
    RefreshResult,
    Reply,
    RPCRequest,
    RPCResult,
    SendRequest,
    SubRefreshRequest,
    SubRefreshResult,
    SubscribePushMsg,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribePushMsg,
)
from .access import (
    SubscriptionOptions,
    has_history,
    may_publish,
    may_see_history,
    may_see_presence,
    may_subscribe_by_namespace,
    namespace_defaults,
    with_overrides,
)
from .delta import recovered_chain
from .eager import run_eagerly
from .fanout import FAIL_BAD_PAYLOAD, FAIL_SLOW
from .ids import new_client_id
from .node import Node
from .transport import Transport

logger = logging.getLogger("centrifugo_fast.client")

CONNECTING = 0
CONNECTED = 1
CLOSED = 2


class Subscription:
    """One channel subscription of a connection."""

    __slots__ = ("chan_info", "expire_at", "server_side", "options", "offset", "epoch")

    def __init__(
        self,
        chan_info: bytes,
        expire_at: int,
        server_side: bool,
        options: SubscriptionOptions,
    ) -> None:
        #: Channel-specific info (subscription token, API subscribe), shown with the publisher.
        self.chan_info = chan_info
        #: Unix seconds when the subscription expires unless refreshed; 0 = never.
        self.expire_at = expire_at
        #: Subscribed by the server (token, personal channel, API), not by a subscribe command.
        self.server_side = server_side
        #: Presence, join/leave, positioning and recovery settings of this subscription.
        self.options = options
        #: Stream position delivered so far (positioned subscriptions only).
        self.offset = 0
        self.epoch = ""


class _Prepared:
    """A subscription between `_prepare` and `_finalize`."""

    __slots__ = ("channel", "sub", "result", "top", "recovered", "client_offset", "delta_base")

    def __init__(self, channel: str, sub: Subscription, result: SubscribeResult) -> None:
        self.channel = channel
        self.sub = sub
        self.result = result
        self.top: StreamPosition | None = None
        self.recovered: list[Publication] = []
        self.client_offset = 0
        self.delta_base: bytes | None = None


def _bad_request(reason: str) -> DisconnectException:
    logger.debug("bad request: %s", reason)
    return DisconnectException(codes.DISCONNECT_BAD_REQUEST)


def _reply_error(error: ReplyError) -> ReplyErrorException:
    return ReplyErrorException(error)


def _ttl(expire_at: int, now: float) -> int:
    """Seconds until `expire_at` as Centrifugo counts them (whole Unix seconds, at least 1).

    Rounding the fraction down instead would shorten every TTL by up to a second and, under a
    second before expiry, send 0, which makes centrifuge-js refresh in a tight loop.
    """
    return max(expire_at - int(now), 1)


def _uni_disconnect(error: ReplyError) -> Disconnect:
    """A connect error as the disconnect a unidirectional client gets (spec §9.6)."""
    if error.code in (codes.ERROR_TOKEN_EXPIRED.code, codes.ERROR_EXPIRED.code):
        return codes.DISCONNECT_EXPIRED
    if error.code == codes.ERROR_TOO_MANY_REQUESTS.code:
        return codes.DISCONNECT_TOO_MANY_REQUESTS
    if error.code == codes.ERROR_PERMISSION_DENIED.code:
        return codes.DISCONNECT_PERMISSION_DENIED
    return codes.DISCONNECT_SERVER_ERROR


def _check_data_format(data: bytes, data_format: str) -> None:
    """Centrifugo's publication_data_format rules (spec/server-api.md §4.6)."""
    if data_format == "binary":
        return
    if not data:
        raise _reply_error(codes.ERROR_BAD_REQUEST)
    if data_format in ("json", "json_object"):
        try:
            value = json.loads(data)
        except ValueError as exc:
            raise _reply_error(codes.ERROR_BAD_REQUEST) from exc
        if data_format == "json_object" and not isinstance(value, dict):
            raise _reply_error(codes.ERROR_BAD_REQUEST)


class Client:
    """A connection speaking the bidirectional client protocol."""

    __slots__ = (
        "node",
        "transport",
        "codec",
        "writer",
        "id",
        "user",
        "conn_info",
        "state",
        "subs",
        "expire_at",
        "_queue",
        "_connect_failed",
        "_ping_outstanding",
        "_ping_generation",
        "_metric_labels",
        "__weakref__",
    )

    def __init__(self, node: Node, transport: Transport, codec: Codec) -> None:
        self.node = node
        self.transport = transport
        self.codec = codec
        self.writer = transport.writer
        self.id = new_client_id()
        self.user = ""
        self.conn_info = b""
        self.state = CONNECTING
        self.subs: dict[str, Subscription] = {}
        #: Unix seconds when the connection expires unless refreshed; 0 = never.
        self.expire_at = 0
        self._queue: deque[Command] | None = None
        self._connect_failed = False
        self._ping_outstanding = False
        self._ping_generation = 0
        #: Shared metric label tuple while connected (None before the connect succeeds).
        self._metric_labels: tuple[str, str, str, str] | None = None
        stale = node.config.client.stale_close_delay
        if stale > 0:
            node.timers.call_later(stale, self._check_stale)

    # ---- identity ----

    @property
    def session(self) -> str:
        """The emulation/unidirectional session id ("" for a plain WebSocket)."""
        return getattr(self.transport, "session", "")

    def client_info(self, chan_info: bytes = b"") -> ClientInfo:
        """This connection as ClientInfo (for publications, presence, join/leave)."""
        return ClientInfo(self.user, self.id, self.conn_info, chan_info)

    # ---- input ----

    def handle_data(self, data: bytes) -> None:
        """Process one transport message holding a batch of encoded commands."""
        if self.state == CLOSED:
            return
        if self._connect_failed:
            self.disconnect(codes.DISCONNECT_BAD_REQUEST)
            return
        try:
            commands = self.codec.decode_commands(data)
        except CodecError as exc:
            logger.debug("client %s sent an undecodable frame: %s", self.id, exc)
            self.disconnect(codes.DISCONNECT_BAD_REQUEST)
            return
        self.handle_commands(commands)

    def handle_commands(self, commands: list[Command]) -> None:
        """Process a batch of decoded commands (transports that decode the first batch
        themselves, to answer a malformed connect request with an HTTP status)."""
        if self.state == CLOSED:
            return
        if self._queue is not None:
            # A previous batch is still being processed (it awaited I/O): keep order.
            self._queue.extend(commands)
            return
        self._queue = deque(commands)
        run_eagerly(self._process(), self.node.loop)

    async def _process(self) -> None:
        queue = self._queue
        try:
            while queue and self.state != CLOSED and not self._connect_failed:
                await self._handle_command(queue.popleft())
        finally:
            self._queue = None

    async def _handle_command(self, cmd: Command) -> None:
        started = time.perf_counter()
        error_code = 0
        try:
            await self._dispatch(cmd)
        except ReplyErrorException as exc:
            error_code = exc.error.code
            self._write_error(cmd.id, exc.error)
        except DisconnectException as exc:
            self.disconnect(exc.disconnect)
        except EngineUnavailable as exc:
            logger.warning("client %s: engine unavailable: %s", self.id, exc)
            # Temporary: the SDK retries (a failed connect reconnects with backoff).
            error_code = codes.ERROR_INTERNAL.code
            self._write_error(cmd.id, codes.ERROR_INTERNAL)
        except Exception:
            logger.exception("client %s: error handling command %d", self.id, cmd.id)
            if self.state == CONNECTING:
                self.disconnect(codes.DISCONNECT_SERVER_ERROR)
            else:
                error_code = codes.ERROR_INTERNAL.code
                self._write_error(cmd.id, codes.ERROR_INTERNAL)
        self.node.metrics.command_done(
            self.transport.name,
            command_method(cmd),
            time.perf_counter() - started,
            error_code,
            cmd.id != 0 and self.state != CLOSED,
        )

    async def _dispatch(self, cmd: Command) -> None:
        if self.state == CONNECTING:
            if cmd.connect is None:
                raise _bad_request("first command must be connect")
            if cmd.id == 0:
                raise _bad_request("connect without id")
            await self._connect(cmd.id, cmd.connect)
            return
        if cmd.id == 0:
            if cmd.send is not None:
                await self._send(cmd.send)
            else:
                self._pong()
            return
        if cmd.subscribe is not None:
            await self._subscribe(cmd.id, cmd.subscribe)
        elif cmd.publish is not None:
            await self._publish(cmd.id, cmd.publish)
        elif cmd.unsubscribe is not None:
            await self._unsubscribe(cmd.id, cmd.unsubscribe)
        elif cmd.presence is not None:
            await self._presence(cmd.id, cmd.presence)
        elif cmd.presence_stats is not None:
            await self._presence_stats(cmd.id, cmd.presence_stats)
        elif cmd.history is not None:
            await self._history(cmd.id, cmd.history)
        elif cmd.rpc is not None:
            await self._rpc(cmd.id, cmd.rpc)
        elif cmd.refresh is not None:
            await self._refresh(cmd.id, cmd.refresh)
        elif cmd.sub_refresh is not None:
            await self._sub_refresh(cmd.id, cmd.sub_refresh)
        elif cmd.connect is not None:
            raise _bad_request("second connect")
        elif cmd.send is not None:
            raise _bad_request("send with id")
        else:
            raise _bad_request("unknown command")

    # ---- output ----

    def _write_reply(self, reply: Reply) -> None:
        if self.state == CLOSED:
            return
        if self.transport.unidirectional:
            # Unidirectional clients send no commands: the only reply is the connect result,
            # which they receive as a connect push (spec §9.6).
            if reply.connect is not None:
                self.transport.write(self.codec.encode_push(Push(connect=reply.connect)))
            return
        self.transport.write(self.codec.encode_reply(reply))

    def _write_error(self, cmd_id: int, error: ReplyError) -> None:
        if cmd_id == 0:
            return
        if self.transport.unidirectional:
            self.disconnect(_uni_disconnect(error))
            return
        self._write_reply(
            Reply(
                id=cmd_id,
                error=ErrorMsg(code=error.code, message=error.message, temporary=error.temporary),
            )
        )
        if self.state == CONNECTING:
            # spec §2.4 rule 7: after a failed connect the connection is unusable.
            self._connect_failed = True

    def send_push(self, build: Callable[[Codec], Push]) -> None:
        """Send one push to this connection only."""
        if self.state == CLOSED:
            return
        self.transport.write(self.codec.encode_push(build(self.codec)))

    # ---- lifecycle ----

    def disconnect(self, disconnect: Disconnect | None) -> None:
        """Close the connection with `disconnect` (None: a plain close) and clean up."""
        if self.state == CLOSED:
            return
        if disconnect is not None:
            self.node.metrics.server_disconnect(disconnect.code)
        self._cleanup()
        self.transport.close(disconnect)

    def on_transport_closed(self) -> None:
        """The transport went away (peer closed, network error): clean up."""
        if self.state != CLOSED:
            self._cleanup()

    def on_writer_failure(self, reason: int) -> None:
        """The writer gave up: a slow consumer or a payload this protocol cannot carry."""
        if reason == FAIL_SLOW:
            self.disconnect(codes.DISCONNECT_SLOW)
        elif reason == FAIL_BAD_PAYLOAD:
            self.disconnect(codes.DISCONNECT_INAPPROPRIATE_PROTOCOL)
        else:
            self.disconnect(None)

    def _cleanup(self) -> None:
        was_connected = self.state == CONNECTED
        self.state = CLOSED
        if not was_connected:
            return
        node = self.node
        node.hub.remove_client(self)
        if self._metric_labels is not None:
            node.metrics.connection_closed(self._metric_labels)
        subs = list(self.subs.items())
        self.subs.clear()
        for channel, sub in subs:
            node.spawn(self._drop_subscription(channel, sub), "unsubscribe")

    def _check_stale(self) -> None:
        if self.state == CONNECTING:
            self.disconnect(codes.DISCONNECT_STALE)

    # ---- connect ----

    async def _connect(self, cmd_id: int, req: ConnectRequest) -> None:
        node = self.node
        cfg = node.config.client
        if node.closing:
            raise DisconnectException(codes.DISCONNECT_SHUTDOWN)
        now = time.time()
        user = ""
        info = b""
        expire_at = 0
        token_subs: dict[str, ServerSubscription] = {}
        if req.token:
            try:
                token = await node.token_verifier.verify_connection_token(req.token)
            except TokenExpiredError as exc:
                if not cfg.insecure:
                    raise _reply_error(codes.ERROR_TOKEN_EXPIRED) from exc
            except InvalidTokenError as exc:
                logger.info("client %s: invalid connection token: %s", self.id, exc)
                if not cfg.insecure:
                    raise DisconnectException(codes.DISCONNECT_INVALID_TOKEN) from exc
            except TokenVerifyUnavailable as exc:
                logger.warning("client %s: cannot verify the token now: %s", self.id, exc)
                raise _reply_error(codes.ERROR_INTERNAL) from exc
            else:
                user, info, token_subs = token.user, token.info, token.subs
                expire_at = 0 if cfg.insecure else token.expire_at
                if not user and cfg.disallow_anonymous_connection_tokens:
                    raise DisconnectException(codes.DISCONNECT_PERMISSION_DENIED)
        elif self.transport.header_user:
            user = self.transport.header_user  # set by a trusted proxy in front of us
        elif not (cfg.allow_anonymous_connect_without_token or cfg.insecure):
            logger.info("client %s: no credentials", self.id)
            raise DisconnectException(codes.DISCONNECT_BAD_REQUEST)
        if expire_at and expire_at <= now:
            raise _reply_error(codes.ERROR_EXPIRED)
        if cfg.connection_limit and node.hub.num_clients >= cfg.connection_limit:
            raise DisconnectException(codes.DISCONNECT_CONNECTION_LIMIT)
        if (
            cfg.user_connection_limit
            and user
            and len(node.hub.user_clients(user)) >= cfg.user_connection_limit
        ):
            raise DisconnectException(codes.DISCONNECT_CONNECTION_LIMIT)

        server_subs: dict[str, Subscription] = {}
        for channel, claim in token_subs.items():
            opts = node.channels.options(channel)  # unknown namespace -> 102
            options = with_overrides(namespace_defaults(opts), claim.override)
            server_subs[channel] = Subscription(claim.info, 0, True, options)
        personal = cfg.subscribe_to_user_personal_channel
        if personal.enabled and user:
            channel = node.channels.personal_channel(user)
            opts = node.channels.options(channel)
            server_subs[channel] = Subscription(b"", 0, True, namespace_defaults(opts))
            if personal.single_connection:
                # One connection per user: the newest one wins (3504, no reconnect).
                for other in node.hub.user_clients(user):
                    other.disconnect(codes.DISCONNECT_CONNECTION_LIMIT)
        if cfg.channel_limit and len(server_subs) > cfg.channel_limit:
            raise DisconnectException(codes.DISCONNECT_CHANNEL_LIMIT)

        self.user = user
        self.conn_info = info
        self.expire_at = expire_at
        self.state = CONNECTED
        node.hub.add_client(self)
        self._metric_labels = node.metrics.connection_labels(
            self.transport.name, req.name, req.version
        )
        node.metrics.connection_opened(self._metric_labels)
        result = ConnectResult(client=self.id, version=node.version)
        session = self.session
        if session:
            # Emulation clients route their commands by session and node; unidirectional
            # clients only see the session (spec §3.1).
            result.session = session
            if not self.transport.unidirectional:
                result.node = node.id
        if cfg.connect_include_server_time:
            result.time = int(now * 1000)
        if expire_at:
            result.expires = True
            result.ttl = _ttl(expire_at, now)
            self._schedule_expiry_check()
        if self.transport.app_level_ping and cfg.ping_interval > 0:
            result.ping = max(int(cfg.ping_interval), 1)
            result.pong = cfg.pong_timeout > 0 and not self.transport.unidirectional
            first = random.uniform(cfg.ping_interval / 2, cfg.ping_interval)
            node.timers.call_later(first, self._send_ping)
        prepared = [
            await self._prepare(channel, server_sub, req.subs.get(channel))
            for channel, server_sub in server_subs.items()
        ]
        later = [(p.channel, self._finalize(p)) for p in prepared]
        for p in prepared:
            data = token_subs[p.channel].data if p.channel in token_subs else b""
            if data:
                p.result.data = self.codec.payload(data)
            result.subs[p.channel] = p.result
        self._write_reply(Reply(id=cmd_id, connect=result))
        for channel, pubs in later:
            self._push_publications(channel, pubs)
        for channel, server_sub in server_subs.items():
            if server_sub.options.join_leave and self.subs.get(channel) is server_sub:
                await self._publish_join(channel, server_sub.chan_info)

    # ---- ping / pong ----

    def _send_ping(self) -> None:
        if self.state != CONNECTED:
            return
        cfg = self.node.config.client
        self.transport.write(self.codec.ping_reply)
        if cfg.pong_timeout > 0 and not self.transport.unidirectional:
            self._ping_outstanding = True
            self._ping_generation += 1
            generation = self._ping_generation
            self.node.timers.call_later(cfg.pong_timeout, lambda: self._check_pong(generation))
        self.node.timers.call_later(cfg.ping_interval, self._send_ping)

    def _check_pong(self, generation: int) -> None:
        if (
            self.state == CONNECTED
            and self._ping_outstanding
            and generation == self._ping_generation
        ):
            self.disconnect(codes.DISCONNECT_NO_PONG)

    def _pong(self) -> None:
        if not self._ping_outstanding:
            raise _bad_request("unsolicited pong")
        self._ping_outstanding = False

    # ---- expiry and refresh ----

    def _schedule_expiry_check(self) -> None:
        delay = self.expire_at - time.time() + self.node.config.client.expired_close_delay
        self.node.timers.call_later(max(delay, 0.0), self._check_expired)

    def _check_expired(self) -> None:
        if self.state == CONNECTED and self.expire_at and self.expire_at <= time.time():
            self.disconnect(codes.DISCONNECT_EXPIRED)

    async def _refresh(self, cmd_id: int, req: RefreshRequest) -> None:
        if not req.token:
            raise _bad_request("refresh without token")
        try:
            token = await self.node.token_verifier.verify_connection_token(req.token)
        except TokenExpiredError as exc:
            raise DisconnectException(codes.DISCONNECT_EXPIRED) from exc
        except InvalidTokenError as exc:
            raise DisconnectException(codes.DISCONNECT_INVALID_TOKEN) from exc
        except TokenVerifyUnavailable as exc:
            raise _reply_error(codes.ERROR_INTERNAL) from exc
        if token.user != self.user:
            raise DisconnectException(codes.DISCONNECT_INVALID_TOKEN)
        now = time.time()
        if token.expire_at and token.expire_at <= now:
            raise _reply_error(codes.ERROR_EXPIRED)
        self.expire_at = token.expire_at
        self.conn_info = token.info or self.conn_info
        result = RefreshResult()
        if self.expire_at:
            result.expires = True
            result.ttl = _ttl(self.expire_at, now)
            self._schedule_expiry_check()
        self._write_reply(Reply(id=cmd_id, refresh=result))

    # ---- subscriptions ----

    async def _subscribe(self, cmd_id: int, req: SubscribeRequest) -> None:
        node = self.node
        cfg = node.config.client
        rules = node.channels
        channel = req.channel
        # Checks in Centrifugo's order: the library's first, then the server's handler.
        if not channel:
            raise _bad_request("subscribe without channel")
        if req.delta and req.delta != "fossil":
            raise _bad_request(f"unknown delta type {req.delta!r}")
        rules.check_length(channel)
        if channel in self.subs:
            raise _reply_error(codes.ERROR_ALREADY_SUBSCRIBED)
        if cfg.channel_limit and len(self.subs) >= cfg.channel_limit:
            raise _reply_error(codes.ERROR_LIMIT_EXCEEDED)
        _, tail, opts = rules.resolve(channel)
        rules.check_name(channel, tail, opts)
        user_limited = rules.is_user_limited(channel, opts)
        options = namespace_defaults(opts)
        chan_info = b""
        expire_at = 0
        data = b""
        if req.token:
            token = await self._verify_subscription_token(channel, req.token)
            options = with_overrides(options, token.override)
            chan_info, expire_at, data = token.info, token.expire_at, token.data
        elif rules.is_private(channel):
            raise _reply_error(codes.ERROR_PERMISSION_DENIED)
        elif user_limited and rules.user_allowed(channel, self.user):
            pass
        elif not user_limited and may_subscribe_by_namespace(opts, self.user):
            pass
        elif not cfg.insecure:
            raise _reply_error(codes.ERROR_PERMISSION_DENIED)
        # Client opt-ins, each gated like Centrifugo gates it.
        if req.positioned and (
            opts.allow_positioning or may_see_history(opts, self.user, True, cfg.insecure)
        ):
            options = options._replace(positioning=True)
        if req.recoverable and (
            opts.allow_recovery or may_see_history(opts, self.user, True, cfg.insecure)
        ):
            options = options._replace(recovery=True)
        if (
            req.join_leave
            and opts.join_leave
            and may_see_presence(opts, self.user, True, cfg.insecure)
        ):
            options = options._replace(push_join_leave=True)
        if req.delta and req.delta in opts.allowed_delta_types:
            options = options._replace(delta=True)
        now = time.time()
        if expire_at and expire_at <= now:
            raise _reply_error(codes.ERROR_EXPIRED)
        sub = Subscription(chan_info, expire_at, False, options)
        prepared = await self._prepare(channel, sub, req)
        if self.state != CONNECTED or channel in self.subs:
            await node.cancel_subscription(channel, self)
            return
        after = self._finalize(prepared)
        result = prepared.result
        if data:
            result.data = self.codec.payload(data)
        if expire_at:
            result.expires = True
            result.ttl = _ttl(expire_at, now)
            self._schedule_sub_expiry_check(channel, expire_at)
        # Written right after joining the hub, with no await in between, so this reply
        # precedes every publication of the channel sent to this connection.
        self._write_reply(Reply(id=cmd_id, subscribe=result))
        self._push_publications(channel, after)
        if options.join_leave:
            await self._publish_join(channel, chan_info)

    async def _prepare(
        self, channel: str, sub: Subscription, recover: SubscribeRequest | None
    ) -> _Prepared:
        """First half of a subscription: hold the channel's publications for this client,
        read the stream position (or recover), add presence. Nothing is delivered yet."""
        node = self.node
        opts = sub.options
        prepared = _Prepared(channel, sub, SubscribeResult(delta=opts.delta))
        await node.begin_subscription(channel, self)
        try:
            if opts.positioning or opts.recovery:
                result = prepared.result
                result.positioned = True
                result.recoverable = opts.recovery
                if opts.recovery and recover is not None and recover.recover:
                    result.was_recovering = True
                    prepared.recovered, prepared.top, result.recovered = await node.recover(
                        channel, recover.offset, recover.epoch, opts.recovery_mode
                    )
                    prepared.client_offset = recover.offset
                else:
                    prepared.top = await node.stream_top(channel)
            if opts.presence:
                await node.add_presence(channel, self.id, self.client_info(sub.chan_info))
        except BaseException:
            await node.cancel_subscription(channel, self)
            raise
        return prepared

    def _finalize(self, prepared: _Prepared) -> list[Publication]:
        """Second half, run synchronously right before the reply is written: merge what
        arrived meanwhile, join the hub. Returns publications to push after the reply.

        Publications already covered by the stream position (or the recovered ones) are
        dropped; a gap means the client cannot be brought up to date: 3010.
        """
        node, channel, sub, result = self.node, prepared.channel, prepared.sub, prepared.result
        held = node.hub.take_pending(channel, self)
        opts = sub.options
        positioned = opts.positioning or opts.recovery
        after: list[Publication] = held
        if positioned and prepared.top is not None:
            top = prepared.top
            result.epoch, result.offset = top.epoch, top.offset
            in_reply = list(prepared.recovered) if result.recovered else []
            last = in_reply[-1].offset if in_reply else top.offset
            after = []
            for pub in held:
                if pub.offset == 0 or pub.offset <= last:
                    continue  # no position, or already covered by the read
                if pub.offset != last + 1:
                    raise DisconnectException(codes.DISCONNECT_INSUFFICIENT_STATE)
                (in_reply if result.recovered else after).append(pub)
                last = pub.offset
            sub.epoch, sub.offset = top.epoch, last
            if result.recovered:
                codec = self.codec
                if opts.delta:
                    result.publications = [
                        codec.delta_publication(pub, data, is_delta)
                        for pub, data, is_delta in recovered_chain(in_reply)
                    ]
                else:
                    result.publications = [codec.publication(pub) for pub in in_reply]
                # As Centrifugo: the client's own offset; it catches up with the publications.
                result.offset = prepared.client_offset
                if opts.delta and in_reply and not after:
                    prepared.delta_base = in_reply[-1].data
        self.subs[channel] = sub
        node.hub.add_subscription(
            channel, self, join_leave=opts.push_join_leave, positioned=positioned, delta=opts.delta
        )
        if prepared.delta_base is not None:
            node.hub.set_delta_base(channel, self, prepared.delta_base)
        return after

    def _push_publications(self, channel: str, pubs: list[Publication]) -> None:
        """Deliver publications that arrived while the subscription was being set up."""
        for pub in pubs:

            def build(codec: Codec, pub: Publication = pub) -> Push:
                return Push(channel=channel, pub=codec.publication(pub))

            self.send_push(build)

    async def _publish_join(self, channel: str, chan_info: bytes) -> None:
        """Announce a join after the reply went out; a failure is only logged (as in
        Centrifugo), since the command already succeeded and was answered."""
        try:
            await self.node.publish_join(channel, self.client_info(chan_info))
        except EngineUnavailable as exc:
            logger.warning("client %s: join of %r not sent: %s", self.id, channel, exc)

    async def _drop_subscription(self, channel: str, sub: Subscription) -> None:
        """Undo a subscription: hub, presence, and the leave event.

        As in Centrifugo, an engine failure here is logged and the rest still runs (the
        presence entry then expires after presence_ttl on Redis); the unsubscribe itself
        has happened either way.
        """
        node = self.node
        await node.remove_subscription(channel, self)
        if sub.options.presence:
            try:
                await node.remove_presence(channel, self.id, self.user)
            except EngineUnavailable as exc:
                logger.warning("client %s: presence of %r not removed: %s", self.id, channel, exc)
        if sub.options.join_leave:
            try:
                await node.publish_leave(channel, self.client_info(sub.chan_info))
            except EngineUnavailable as exc:
                logger.warning("client %s: leave of %r not sent: %s", self.id, channel, exc)

    def advance_position(self, channel: str, offset: int, epoch: str) -> int:
        """Track a positioned subscription: 1 next in order, 0 already seen, -1 a gap."""
        sub = self.subs.get(channel)
        if sub is None:
            return 0
        if not sub.epoch:
            sub.epoch = epoch  # subscribed before the stream existed: adopt its epoch
        if epoch == sub.epoch:
            if offset == sub.offset + 1:
                sub.offset = offset
                return 1
            if offset <= sub.offset:
                return 0
        return -1

    def insufficient_state(self, channel: str) -> None:
        """A positioned subscription missed publications: resubscribe (2500) or reconnect."""
        sub = self.subs.get(channel)
        if sub is None:
            return
        if sub.server_side:
            self.disconnect(codes.DISCONNECT_INSUFFICIENT_STATE)
        else:
            self.unsubscribe_server(channel, codes.UNSUBSCRIBE_INSUFFICIENT_STATE)

    async def _verify_subscription_token(self, channel: str, token_text: str) -> SubscriptionToken:
        verifier = self.node.subscription_token_verifier
        try:
            token = await verifier.verify_subscription_token(token_text)
        except TokenExpiredError as exc:
            raise _reply_error(codes.ERROR_TOKEN_EXPIRED) from exc
        except InvalidTokenError as exc:
            logger.info("client %s: invalid subscription token: %s", self.id, exc)
            raise _reply_error(codes.ERROR_PERMISSION_DENIED) from exc
        except TokenVerifyUnavailable as exc:
            logger.warning("client %s: cannot verify the token now: %s", self.id, exc)
            raise _reply_error(codes.ERROR_INTERNAL) from exc
        if (
            token.channel != channel
            or token.user != self.user
            or (token.client and token.client != self.id)
        ):
            raise DisconnectException(codes.DISCONNECT_INVALID_TOKEN)
        return token

    async def subscribe_server_side(
        self,
        channel: str,
        options: SubscriptionOptions,
        *,
        chan_info: bytes = b"",
        data: bytes = b"",
        expire_at: int = 0,
    ) -> None:
        """Subscribe this connection on the server's initiative (API subscribe) and push it."""
        if self.state != CONNECTED or channel in self.subs:
            return
        sub = Subscription(chan_info, expire_at, True, options)
        prepared = await self._prepare(channel, sub, None)
        if self.state != CONNECTED or channel in self.subs:
            await self.node.cancel_subscription(channel, self)
            return
        after = self._finalize(prepared)
        result = prepared.result
        if expire_at:
            self._schedule_sub_expiry_check(channel, expire_at)
        payload = data

        def build(codec: Codec) -> Push:
            push = SubscribePushMsg(
                recoverable=result.recoverable,
                epoch=result.epoch,
                offset=result.offset,
                positioned=result.positioned,
            )
            if payload:
                push.data = codec.payload(payload)
            return Push(channel=channel, subscribe=push)

        self.send_push(build)
        self._push_publications(channel, after)
        if options.join_leave:
            await self._publish_join(channel, chan_info)

    def refresh_server_side(
        self, *, expired: bool = False, expire_at: int | None = None, info: bytes | None = None
    ) -> None:
        """Apply a server API refresh: expire now, set a new expiry, replace the info."""
        if self.state != CONNECTED:
            return
        if expired:
            self.disconnect(codes.DISCONNECT_EXPIRED)
            return
        if info is not None:
            self.conn_info = info
        if expire_at is not None:
            self.expire_at = expire_at
            if expire_at:
                self._schedule_expiry_check()

    def _schedule_sub_expiry_check(self, channel: str, expire_at: int) -> None:
        delay = expire_at - time.time() + self.node.config.client.expired_sub_close_delay
        self.node.timers.call_later(
            max(delay, 0.0), lambda: self._check_sub_expired(channel, expire_at)
        )

    def _check_sub_expired(self, channel: str, expire_at: int) -> None:
        sub = self.subs.get(channel)
        if self.state != CONNECTED or sub is None or sub.expire_at != expire_at:
            return
        if sub.server_side:
            self.disconnect(codes.DISCONNECT_SUB_EXPIRED)
            return
        self.unsubscribe_server(channel, codes.UNSUBSCRIBE_EXPIRED)

    def unsubscribe_server(self, channel: str, unsub: codes.Unsubscribe) -> None:
        """Remove a subscription on the server's initiative and tell the client."""
        sub = self.subs.pop(channel, None) if self.state == CONNECTED else None
        if sub is None:
            return
        self.node.metrics.server_unsubscribe(unsub.code)
        self.node.spawn(self._drop_subscription(channel, sub), "unsubscribe")
        self.send_push(
            lambda _codec: Push(
                channel=channel,
                unsubscribe=UnsubscribePushMsg(code=unsub.code, reason=unsub.reason),
            )
        )

    async def _sub_refresh(self, cmd_id: int, req: SubRefreshRequest) -> None:
        channel = req.channel
        if not channel:
            raise _bad_request("sub_refresh without channel")
        sub = self.subs.get(channel)
        if sub is None:
            raise _reply_error(codes.ERROR_PERMISSION_DENIED)
        if not req.token:
            raise _reply_error(codes.ERROR_BAD_REQUEST)
        try:
            verifier = self.node.subscription_token_verifier
            token = await verifier.verify_subscription_token(req.token)
        except TokenExpiredError as exc:
            # Centrifugo answers an empty result here and keeps the subscription without
            # expiry; we answer 109 so the SDK fetches a fresh token instead.
            raise _reply_error(codes.ERROR_TOKEN_EXPIRED) from exc
        except InvalidTokenError as exc:
            raise DisconnectException(codes.DISCONNECT_INVALID_TOKEN) from exc
        except TokenVerifyUnavailable as exc:
            raise _reply_error(codes.ERROR_INTERNAL) from exc
        if (
            token.channel != channel
            or token.user != self.user
            or (token.client and token.client != self.id)
        ):
            raise DisconnectException(codes.DISCONNECT_INVALID_TOKEN)
        now = time.time()
        if token.expire_at and token.expire_at <= now:
            raise _reply_error(codes.ERROR_EXPIRED)
        sub.expire_at = token.expire_at
        sub.chan_info = token.info
        result = SubRefreshResult()
        if sub.expire_at:
            result.expires = True
            result.ttl = _ttl(sub.expire_at, now)
            self._schedule_sub_expiry_check(channel, sub.expire_at)
        self._write_reply(Reply(id=cmd_id, sub_refresh=result))

    async def _unsubscribe(self, cmd_id: int, req: ChannelRequest) -> None:
        channel = req.channel
        if not channel:
            raise _bad_request("unsubscribe without channel")
        sub = self.subs.pop(channel, None)
        if sub is not None:
            await self._drop_subscription(channel, sub)
        self._write_reply(Reply(id=cmd_id, unsubscribe=EmptyResult()))

    # ---- publish, presence, history, rpc, send ----

    async def _publish(self, cmd_id: int, req: PublishRequest) -> None:
        node = self.node
        channel = req.channel
        if not channel:
            raise _bad_request("publish without channel")
        node.channels.check_length(channel)
        _, tail, opts = node.channels.resolve(channel)
        node.channels.check_name(channel, tail, opts)
        data = raw_bytes(req.data)
        _check_data_format(data, node.channels.data_format(opts))
        sub = self.subs.get(channel)
        if not may_publish(opts, self.user, sub is not None, node.config.client.insecure):
            raise _reply_error(codes.ERROR_PERMISSION_DENIED)
        info = self.client_info(sub.chan_info if sub is not None else b"")
        await node.publish(channel, data, info=info)
        self._write_reply(Reply(id=cmd_id, publish=EmptyResult()))

    def _check_presence_access(self, channel: str) -> None:
        node = self.node
        if not channel:
            raise _bad_request("presence without channel")
        node.channels.check_length(channel)
        _, tail, opts = node.channels.resolve(channel)
        node.channels.check_name(channel, tail, opts)
        if not opts.presence:
            raise _reply_error(codes.ERROR_NOT_AVAILABLE)
        subscribed = channel in self.subs
        if not may_see_presence(opts, self.user, subscribed, node.config.client.insecure):
            raise _reply_error(codes.ERROR_PERMISSION_DENIED)

    async def _presence(self, cmd_id: int, req: ChannelRequest) -> None:
        self._check_presence_access(req.channel)
        entries = await self.node.presence(req.channel)
        codec = self.codec
        result = PresenceResult(
            presence={client: codec.client_info(info) for client, info in entries.items()}
        )
        self._write_reply(Reply(id=cmd_id, presence=result))

    async def _presence_stats(self, cmd_id: int, req: ChannelRequest) -> None:
        self._check_presence_access(req.channel)
        clients, users = await self.node.presence_stats(req.channel)
        result = PresenceStatsResult(num_clients=clients, num_users=users)
        self._write_reply(Reply(id=cmd_id, presence_stats=result))

    async def _history(self, cmd_id: int, req: HistoryRequest) -> None:
        node = self.node
        channel = req.channel
        if not channel:
            raise _bad_request("history without channel")
        node.channels.check_length(channel)
        _, tail, opts = node.channels.resolve(channel)
        node.channels.check_name(channel, tail, opts)
        if not has_history(opts):
            raise _reply_error(codes.ERROR_NOT_AVAILABLE)
        subscribed = channel in self.subs
        if not may_see_history(opts, self.user, subscribed, node.config.client.insecure):
            raise _reply_error(codes.ERROR_PERMISSION_DENIED)
        limit = req.limit
        cap = node.config.client.history_max_publication_limit
        if cap > 0 and (limit < 0 or limit > cap):
            limit = cap
        since = None if req.since is None else StreamPosition(req.since.offset, req.since.epoch)
        pubs, top = await node.history(channel, since=since, limit=limit, reverse=req.reverse)
        codec = self.codec
        result = HistoryResult(
            publications=[codec.publication(pub) for pub in pubs],
            epoch=top.epoch,
            offset=top.offset,
        )
        self._write_reply(Reply(id=cmd_id, history=result))

    async def _rpc(self, cmd_id: int, req: RPCRequest) -> None:
        handlers = self.node.rpc_handlers
        if not handlers:
            raise _reply_error(codes.ERROR_NOT_AVAILABLE)
        handler = handlers.get(req.method)
        if handler is None:
            raise _reply_error(codes.ERROR_METHOD_NOT_FOUND)
        data = await handler(self, req.method, raw_bytes(req.data))
        result = RPCResult()
        if data:
            result.data = self.codec.payload(data)
        self._write_reply(Reply(id=cmd_id, rpc=result))

    async def _send(self, req: SendRequest) -> None:
        handler = self.node.message_handler
        if handler is None:
            raise DisconnectException(codes.DISCONNECT_NOT_AVAILABLE)
        await handler(self, raw_bytes(req.data))

    def disconnect_push(self, disconnect: Disconnect) -> Push:
        """The disconnect push for transports that signal disconnects in-band."""
        return Push(disconnect=DisconnectPushMsg(code=disconnect.code, reason=disconnect.reason))
