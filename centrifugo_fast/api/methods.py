"""Server API methods (spec/server-api.md §1.5): request/result shapes and their logic.

Every front end (HTTP API, admin UI, in-process callers) goes through `ApiMethods`, which
calls the Node. Server API calls bypass client permission checks.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from msgspec import Raw

from .. import codes
from ..codes import ReplyError
from ..core.node import Node
from ..errors import ReplyErrorException
from ..protocol.messages import EMPTY_RAW, ErrorMsg, Uint32, Uint64


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


def _error(error: ReplyError) -> ReplyErrorException:
    return ReplyErrorException(error)


def _payload(data: Raw, b64data: str) -> tuple[bytes, bool]:
    """The publication bytes and whether they are known to be JSON."""
    if b64data:
        try:
            return base64.b64decode(b64data, validate=True), False
        except (binascii.Error, ValueError) as exc:
            raise _error(codes.ERROR_BAD_REQUEST) from exc
    raw = bytes(data)
    return (b"" if raw == b"null" else raw), True


class ApiMethods:
    """The server API, independent of how it is reached."""

    def __init__(self, node: Node) -> None:
        self.node = node
        #: method name -> (request type, handler)
        self.methods: dict[str, tuple[type[Any], Callable[[Any], Awaitable[msgspec.Struct]]]] = {
            "publish": (PublishRequest, self.publish),
            "broadcast": (BroadcastRequest, self.broadcast),
            "info": (InfoRequest, self.info),
            "channels": (ChannelsRequest, self.channels),
        }

    async def _publish_one(
        self, channel: str, data: bytes, is_json: bool, tags: dict[str, str]
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
        result = await self.node.publish(channel, data, tags=tags or None, data_is_json=is_json)
        return PublishResult(offset=result.offset, epoch=result.epoch)

    async def publish(self, req: PublishRequest) -> PublishResult:
        """Publish into one channel."""
        if not req.channel:
            raise _error(codes.ERROR_BAD_REQUEST)
        data, is_json = _payload(req.data, req.b64data)
        return await self._publish_one(req.channel, data, is_json, req.tags)

    async def broadcast(self, req: BroadcastRequest) -> BroadcastResult:
        """Publish the same data into several channels; one response per channel, in order."""
        if not req.channels:
            raise _error(codes.ERROR_BAD_REQUEST)
        data, is_json = _payload(req.data, req.b64data)
        responses: list[PublishResponse] = []
        for channel in req.channels:
            try:
                result = await self._publish_one(channel, data, is_json, req.tags)
            except ReplyErrorException as exc:
                err = exc.error
                responses.append(
                    PublishResponse(error=ErrorMsg(code=err.code, message=err.message))
                )
            else:
                responses.append(PublishResponse(result=result))
        return BroadcastResult(responses=responses)

    async def info(self, req: InfoRequest) -> InfoResult:
        """Statistics of every node (one node with the memory engine)."""
        node = self.node
        hub = node.hub
        return InfoResult(
            nodes=[
                NodeResult(
                    uid=node.id,
                    name=node.name,
                    version=f"{node.version} centrifugo-fast",
                    num_clients=hub.num_clients,
                    num_users=hub.num_users,
                    num_channels=hub.num_channels,
                    num_subs=hub.num_subscriptions,
                    uptime=node.uptime(),
                )
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
