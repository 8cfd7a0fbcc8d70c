"""Server API methods (spec/server-api.md §1.5): request/result shapes and their logic.

Every front end (HTTP API, admin UI, in-process callers) goes through `ApiMethods`, which
calls the Node. Server API calls bypass client permission checks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from msgspec import Raw

from .. import codes
from ..codes import ReplyError
from ..core.access import has_history
from ..core.control import (
    ControlCommand,
    DisconnectUser,
    RefreshUser,
    SubscribeUser,
    UnsubscribeUser,
)
from ..core.eager import run_eagerly
from ..core.node import Node
from ..engine.base import EngineUnavailable
from ..engine.types import ClientInfo, StreamPosition
from ..errors import ReplyErrorException
from ..protocol.codec_json import embed
from ..protocol.messages import EMPTY_RAW, ErrorMsg, Int32, Uint32, Uint64

logger = logging.getLogger("centrifugo_fast.api")

#: Publications of one `broadcast` in flight at once (Centrifugo: 1024).
BROADCAST_MAX_CONCURRENCY = 1024


class _Req(msgspec.Struct, kw_only=True, gc=False):
    pass


class _Res(msgspec.Struct, omit_defaults=True, kw_only=True, gc=False):
    pass


# ---- requests ----


class PublishRequest(_Req):
    channel: str = ""
    data: Raw = EMPTY_RAW
    b64data: str = ""
    skip_history: bool = False
    tags: dict[str, str] = {}
    idempotency_key: str = ""
    delta: bool = False
    version: Uint64 = 0
    version_epoch: str = ""


class BroadcastRequest(_Req):
    channels: list[str] = []
    data: Raw = EMPTY_RAW
    b64data: str = ""
    skip_history: bool = False
    tags: dict[str, str] = {}
    idempotency_key: str = ""
    delta: bool = False
    version: Uint64 = 0
    version_epoch: str = ""


class InfoRequest(_Req):
    pass


class ChannelsRequest(_Req):
    pattern: str = ""


class BoolValue(_Req):
    value: bool = False


class SubscribeOptionOverride(_Req):
    presence: BoolValue | None = None
    join_leave: BoolValue | None = None
    force_push_join_leave: BoolValue | None = None
    force_positioning: BoolValue | None = None
    force_recovery: BoolValue | None = None

    def as_dict(self) -> dict[str, bool]:
        """The overrides that are set, as {"presence": True, ...}."""
        return {
            name: value.value
            for name in self.__struct_fields__
            if (value := getattr(self, name)) is not None
        }


class StreamPositionRequest(_Req):
    offset: Uint64 = 0
    epoch: str = ""


class SubscribeRequest(_Req):
    user: str = ""
    channel: str = ""
    info: Raw = EMPTY_RAW
    b64info: str = ""
    client: str = ""
    session: str = ""
    data: Raw = EMPTY_RAW
    b64data: str = ""
    recover_since: StreamPositionRequest | None = None
    override: SubscribeOptionOverride | None = None
    expire_at: int = 0


class UnsubscribeRequest(_Req):
    user: str = ""
    channel: str = ""
    client: str = ""
    session: str = ""


class DisconnectObject(_Req):
    code: Uint32 = 0
    reason: str = ""


class DisconnectRequest(_Req):
    user: str = ""
    client: str = ""
    session: str = ""
    whitelist: list[str] = []
    disconnect: DisconnectObject | None = None


class RefreshRequest(_Req):
    user: str = ""
    client: str = ""
    session: str = ""
    expired: bool = False
    expire_at: int = 0
    info: Raw = EMPTY_RAW


class ChannelRequest(_Req):
    channel: str = ""


class HistoryRequest(_Req):
    channel: str = ""
    limit: Int32 = 0
    since: StreamPositionRequest | None = None
    reverse: bool = False


class RPCRequest(_Req):
    method: str = ""
    params: Raw = EMPTY_RAW


# ---- results ----


class PublishResult(_Res):
    offset: Uint64 = 0
    epoch: str = ""


class PublishResponse(_Res):
    error: ErrorMsg | None = None
    result: PublishResult | None = None


class BroadcastResult(_Res):
    responses: list[PublishResponse]


class NodeResult(_Res):
    uid: str
    name: str
    version: str
    num_clients: Uint32
    num_users: Uint32
    num_channels: Uint32
    num_subs: Uint32
    uptime: Uint32 = 0


class InfoResult(_Res):
    nodes: list[NodeResult]


class ChannelInfo(_Res):
    num_clients: Uint32


class ChannelsResult(_Res):
    channels: dict[str, ChannelInfo]


class ClientInfoResult(_Res):
    user: str
    client: str
    conn_info: Raw = EMPTY_RAW
    chan_info: Raw = EMPTY_RAW


class PresenceResult(_Res):
    presence: dict[str, ClientInfoResult]


class PresenceStatsResult(_Res):
    num_clients: Uint32
    num_users: Uint32


class PublicationResult(_Res):
    data: Raw = EMPTY_RAW
    info: ClientInfoResult | None = None
    offset: Uint64 = 0
    tags: dict[str, str] = {}


class HistoryResult(_Res):
    publications: list[PublicationResult]
    offset: Uint64
    epoch: str


class EmptyResult(_Res):
    pass


def _error(error: ReplyError) -> ReplyErrorException:
    return ReplyErrorException(error)


def _raw(data: Raw) -> bytes:
    raw = bytes(data)
    return b"" if raw == b"null" else raw


def _b64_or_raw(data: Raw, b64data: str) -> bytes:
    if b64data:
        try:
            return base64.b64decode(b64data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _error(codes.ERROR_BAD_REQUEST) from exc
    return _raw(data)


def _error_response(error: ReplyError) -> PublishResponse:
    return PublishResponse(error=ErrorMsg(code=error.code, message=error.message))


#: Placeholder of a broadcast response not known yet (every slot is filled before return).
_NO_RESPONSE = PublishResponse()


def _client_info(info: ClientInfo) -> ClientInfoResult:
    return ClientInfoResult(
        user=info.user,
        client=info.client,
        conn_info=embed(info.conn_info),
        chan_info=embed(info.chan_info),
    )


def _payload(data: Raw, b64data: str) -> tuple[bytes, bool]:
    """The publication bytes and whether they are known to be JSON (not from b64data)."""
    return _b64_or_raw(data, b64data), not b64data


class ApiMethods:
    """The server API, independent of how it is reached."""

    def __init__(self, node: Node) -> None:
        self.node = node
        #: method name -> (request type, handler)
        self.methods: dict[str, tuple[type[Any], Callable[[Any], Awaitable[msgspec.Struct]]]] = {
            "publish": (PublishRequest, self.publish),
            "broadcast": (BroadcastRequest, self.broadcast),
            "subscribe": (SubscribeRequest, self.subscribe),
            "unsubscribe": (UnsubscribeRequest, self.unsubscribe),
            "disconnect": (DisconnectRequest, self.disconnect),
            "refresh": (RefreshRequest, self.refresh),
            "presence": (ChannelRequest, self.presence),
            "presence_stats": (ChannelRequest, self.presence_stats),
            "history": (HistoryRequest, self.history),
            "history_remove": (ChannelRequest, self.history_remove),
            "info": (InfoRequest, self.info),
            "rpc": (RPCRequest, self.rpc),
            "channels": (ChannelsRequest, self.channels),
        }

    async def _publish_one(
        self,
        channel: str,
        data: bytes,
        is_json: bool,
        tags: dict[str, str],
        skip_history: bool = False,
        idempotency_key: str = "",
        delta: bool = False,
    ) -> PublishResult:
        if not channel:
            raise _error(codes.ERROR_BAD_REQUEST)
        channels = self.node.channels
        opts = channels.options(channel)
        data_format = channels.data_format(opts)
        if data_format != "binary" and not data:
            raise _error(codes.ERROR_BAD_REQUEST)
        if data_format == "json_object" and not data.lstrip().startswith(b"{"):
            raise _error(codes.ERROR_BAD_REQUEST)
        if data_format in ("json", "json_object") and not is_json:
            try:
                msgspec.json.decode(data)
            except msgspec.DecodeError as exc:
                raise _error(codes.ERROR_BAD_REQUEST) from exc
            is_json = True
        result = await self.node.publish(
            channel,
            data,
            tags=tags or None,
            data_is_json=is_json,
            skip_history=skip_history,
            idempotency_key=idempotency_key,
            delta=delta,
        )
        return PublishResult(offset=result.offset, epoch=result.epoch)

    async def publish(self, req: PublishRequest) -> PublishResult:
        """Publish into one channel."""
        if not req.channel:
            raise _error(codes.ERROR_BAD_REQUEST)
        data, is_json = _payload(req.data, req.b64data)
        return await self._publish_one(
            req.channel, data, is_json, req.tags, req.skip_history, req.idempotency_key, req.delta
        )

    async def broadcast(self, req: BroadcastRequest) -> BroadcastResult:
        """Publish the same data into several channels concurrently; one response per
        channel, in request order, each with its own result or error."""
        if not req.channels:
            raise _error(codes.ERROR_BAD_REQUEST)
        data, is_json = _payload(req.data, req.b64data)
        responses: list[PublishResponse] = [_NO_RESPONSE] * len(req.channels)
        loop = self.node.loop
        # Each publish is stepped eagerly: with the memory engine it completes at once and
        # costs no task; one that waits for Redis goes on in a task, so the round trips of
        # all channels overlap (and share pipelines) instead of adding up.
        waiting: set[asyncio.Task[None]] = set()
        for i, channel in enumerate(req.channels):
            task = run_eagerly(self._broadcast_one(responses, i, channel, data, is_json, req), loop)
            if task is not None:
                waiting.add(task)
                if len(waiting) >= BROADCAST_MAX_CONCURRENCY:
                    _, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if waiting:
            await asyncio.wait(waiting)
        return BroadcastResult(responses=responses)

    async def _broadcast_one(
        self,
        responses: list[PublishResponse],
        i: int,
        channel: str,
        data: bytes,
        is_json: bool,
        req: BroadcastRequest,
    ) -> None:
        """Publish into one channel of a broadcast; store its response at `i`."""
        try:
            result = await self._publish_one(
                channel,
                data,
                is_json,
                req.tags,
                req.skip_history,
                req.idempotency_key,
                req.delta,
            )
        except ReplyErrorException as exc:
            responses[i] = _error_response(exc.error)
        except EngineUnavailable as exc:
            logger.warning("broadcast into %r: engine unavailable: %s", channel, exc)
            responses[i] = _error_response(codes.ERROR_INTERNAL)
        except Exception:
            logger.exception("broadcast into %r failed", channel)
            responses[i] = _error_response(codes.ERROR_INTERNAL)
        else:
            responses[i] = PublishResponse(result=result)

    async def subscribe(self, req: SubscribeRequest) -> EmptyResult:
        """Subscribe an online user's connections to a channel (server-side subscription)."""
        if not req.channel:
            raise _error(codes.ERROR_BAD_REQUEST)
        self.node.channels.options(req.channel)  # unknown namespace -> 102
        await self._control(
            SubscribeUser(
                user=req.user,
                channel=req.channel,
                client=req.client,
                session=req.session,
                chan_info=_b64_or_raw(req.info, req.b64info),
                data=_b64_or_raw(req.data, req.b64data),
                expire_at=req.expire_at,
                override=req.override.as_dict() if req.override is not None else {},
            )
        )
        return EmptyResult()

    async def _control(self, command: ControlCommand) -> None:
        """Reach the user's connections on every node."""
        try:
            await self.node.send_control(command)
        except EngineUnavailable as exc:
            raise _error(codes.ERROR_INTERNAL) from exc

    async def unsubscribe(self, req: UnsubscribeRequest) -> EmptyResult:
        """Unsubscribe a user's connections from a channel (unsubscribe push 2000)."""
        if req.channel:
            self.node.channels.options(req.channel)
        await self._control(
            UnsubscribeUser(
                user=req.user, channel=req.channel, client=req.client, session=req.session
            )
        )
        return EmptyResult()

    async def disconnect(self, req: DisconnectRequest) -> EmptyResult:
        """Close a user's connections; 3503 unless a custom code is given."""
        disconnect = codes.DISCONNECT_FORCE_NO_RECONNECT
        if req.disconnect is not None and req.disconnect.code:
            disconnect = codes.Disconnect(req.disconnect.code, req.disconnect.reason)
        await self._control(
            DisconnectUser(
                user=req.user,
                code=disconnect.code,
                reason=disconnect.reason,
                client=req.client,
                session=req.session,
                whitelist=req.whitelist,
            )
        )
        return EmptyResult()

    async def refresh(self, req: RefreshRequest) -> EmptyResult:
        """Expire, extend or re-label a user's connections."""
        info = _raw(req.info)
        await self._control(
            RefreshUser(
                user=req.user,
                client=req.client,
                session=req.session,
                expired=req.expired,
                expire_at=req.expire_at,
                info=info or None,
            )
        )
        return EmptyResult()

    def _presence_options(self, req: ChannelRequest) -> None:
        if not req.channel:
            raise _error(codes.ERROR_BAD_REQUEST)
        if not self.node.channels.options(req.channel).presence:
            raise _error(codes.ERROR_NOT_AVAILABLE)

    async def presence(self, req: ChannelRequest) -> PresenceResult:
        """Connections present in a channel, by client id."""
        self._presence_options(req)
        entries = await self.node.presence(req.channel)
        return PresenceResult(
            presence={client: _client_info(info) for client, info in entries.items()}
        )

    async def presence_stats(self, req: ChannelRequest) -> PresenceStatsResult:
        """Connections and distinct users present in a channel."""
        self._presence_options(req)
        clients, users = await self.node.presence_stats(req.channel)
        return PresenceStatsResult(num_clients=clients, num_users=users)

    def _history_options(self, channel: str) -> None:
        if not channel:
            raise _error(codes.ERROR_BAD_REQUEST)
        if not has_history(self.node.channels.options(channel)):
            raise _error(codes.ERROR_NOT_AVAILABLE)

    async def history(self, req: HistoryRequest) -> HistoryResult:
        """A channel's publications (limit, since, reverse) and its current position."""
        self._history_options(req.channel)
        since = None
        if req.since is not None:
            since = StreamPosition(req.since.offset, req.since.epoch)
        pubs, top = await self.node.history(
            req.channel, since=since, limit=req.limit, reverse=req.reverse
        )
        return HistoryResult(
            publications=[
                PublicationResult(
                    data=embed(pub.data, pub.data_is_json),
                    info=_client_info(pub.info) if pub.info is not None else None,
                    offset=pub.offset,
                    tags=pub.tags or {},
                )
                for pub in pubs
            ],
            offset=top.offset,
            epoch=top.epoch,
        )

    async def history_remove(self, req: ChannelRequest) -> EmptyResult:
        """Drop a channel's retained publications; its stream position stays."""
        self._history_options(req.channel)
        await self.node.remove_history(req.channel)
        return EmptyResult()

    async def rpc(self, req: RPCRequest) -> EmptyResult:
        """Server-side RPC extensions: none are registered, so any method is not found."""
        if not req.method:
            raise _error(codes.ERROR_BAD_REQUEST)
        raise _error(codes.API_ERROR_NOT_FOUND)

    async def info(self, req: InfoRequest) -> InfoResult:
        """Statistics of every node (one node with the memory engine)."""
        return InfoResult(
            nodes=[
                NodeResult(
                    uid=info.uid,
                    name=info.name,
                    version=info.version,
                    num_clients=info.num_clients,
                    num_users=info.num_users,
                    num_channels=info.num_channels,
                    num_subs=info.num_subs,
                    uptime=info.uptime,
                )
                for info in self.node.cluster_info()
            ]
        )

    async def channels(self, req: ChannelsRequest) -> ChannelsResult:
        """Channels with at least one subscriber, optionally filtered by a glob pattern."""
        return ChannelsResult(
            channels={
                name: ChannelInfo(num_clients=count)
                for name, count in self.node.hub.channels(req.pattern)
            }
        )
