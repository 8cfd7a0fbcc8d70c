"""Client protocol v2 messages as typed structs (spec/client-protocol.md §2.4-2.5).

Fields left at their zero value are omitted on encode, except those the spec requires
always (they have no default here). `bytes` fields of the protocol are msgspec.Raw: the exact
JSON value bytes, passed through without re-serialising.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta, Raw

Uint32 = Annotated[int, Meta(ge=0, le=0xFFFFFFFF)]
# msgspec bounds must fit int64; offsets beyond 2**63 never occur in practice.
Uint64 = Annotated[int, Meta(ge=0)]
Int32 = Annotated[int, Meta(ge=-(2**31), le=2**31 - 1)]
EMPTY_RAW = Raw()


class _Msg(msgspec.Struct, omit_defaults=True, kw_only=True, gc=False):
    pass


# ---- requests (client -> server) ----


class StreamPositionMsg(_Msg):
    offset: Uint64 = 0
    epoch: str = ""


class SubscribeRequest(_Msg):
    channel: str = ""
    token: str = ""
    recover: bool = False
    epoch: str = ""
    offset: Uint64 = 0
    data: Raw = EMPTY_RAW
    positioned: bool = False
    recoverable: bool = False
    join_leave: bool = False
    delta: str = ""
    flag: int = 0


class ConnectRequest(_Msg):
    token: str = ""
    data: Raw = EMPTY_RAW
    subs: dict[str, SubscribeRequest] = {}
    name: str = ""
    version: str = ""
    headers: dict[str, str] = {}


class ChannelRequest(_Msg):
    """unsubscribe, presence and presence_stats carry only a channel."""

    channel: str = ""


class PublishRequest(_Msg):
    channel: str = ""
    data: Raw = EMPTY_RAW


class HistoryRequest(_Msg):
    channel: str = ""
    limit: Int32 = 0
    since: StreamPositionMsg | None = None
    reverse: bool = False


class RPCRequest(_Msg):
    data: Raw = EMPTY_RAW
    method: str = ""


class SendRequest(_Msg):
    data: Raw = EMPTY_RAW


class RefreshRequest(_Msg):
    token: str = ""


class SubRefreshRequest(_Msg):
    channel: str = ""
    token: str = ""


class EmptyRequest(_Msg):
    pass


class EmulationRequest(_Msg):
    """The body of `POST /emulation` (client -> server half of http_stream/sse).

    In the JSON protocol `data` is a JSON string holding the command batch text; in Protobuf
    it holds the delimited Command bytes (decoded here as Raw).
    """

    node: str = ""
    session: str = ""
    data: Raw = EMPTY_RAW


class Command(_Msg):
    id: Uint32 = 0
    connect: ConnectRequest | None = None
    subscribe: SubscribeRequest | None = None
    unsubscribe: ChannelRequest | None = None
    publish: PublishRequest | None = None
    presence: ChannelRequest | None = None
    presence_stats: ChannelRequest | None = None
    history: HistoryRequest | None = None
    ping: EmptyRequest | None = None
    send: SendRequest | None = None
    rpc: RPCRequest | None = None
    refresh: RefreshRequest | None = None
    sub_refresh: SubRefreshRequest | None = None


# ---- replies and pushes (server -> client) ----


class ClientInfoMsg(_Msg):
    user: str
    client: str
    conn_info: Raw = EMPTY_RAW
    chan_info: Raw = EMPTY_RAW


class PublicationMsg(_Msg):
    data: Raw = EMPTY_RAW
    info: ClientInfoMsg | None = None
    offset: Uint64 = 0
    tags: dict[str, str] = {}
    delta: bool = False
    time: int = 0
    channel: str = ""
    epoch: str = ""


class ErrorMsg(_Msg):
    code: Uint32
    message: str
    temporary: bool = False


class SubscribeResult(_Msg):
    expires: bool = False
    ttl: Uint32 = 0
    recoverable: bool = False
    epoch: str = ""
    publications: list[PublicationMsg] = []
    recovered: bool = False
    offset: Uint64 = 0
    positioned: bool = False
    data: Raw = EMPTY_RAW
    was_recovering: bool = False
    delta: bool = False


class ConnectResult(_Msg):
    client: str
    version: str = ""
    expires: bool = False
    ttl: Uint32 = 0
    data: Raw = EMPTY_RAW
    subs: dict[str, SubscribeResult] = {}
    ping: Uint32 = 0
    pong: bool = False
    session: str = ""
    node: str = ""
    time: int = 0


class RefreshResult(_Msg):
    client: str = ""
    version: str = ""
    expires: bool = False
    ttl: Uint32 = 0


class SubRefreshResult(_Msg):
    expires: bool = False
    ttl: Uint32 = 0


class EmptyResult(_Msg):
    pass


class PresenceResult(_Msg):
    presence: dict[str, ClientInfoMsg]


class PresenceStatsResult(_Msg):
    num_clients: Uint32
    num_users: Uint32


class HistoryResult(_Msg):
    publications: list[PublicationMsg]
    epoch: str
    offset: Uint64


class RPCResult(_Msg):
    data: Raw = EMPTY_RAW


class JoinLeaveMsg(_Msg):
    info: ClientInfoMsg


class UnsubscribePushMsg(_Msg):
    code: Uint32
    reason: str


class DisconnectPushMsg(_Msg):
    code: Uint32
    reason: str


class MessagePushMsg(_Msg):
    data: Raw = EMPTY_RAW


class SubscribePushMsg(_Msg):
    recoverable: bool = False
    epoch: str = ""
    offset: Uint64 = 0
    positioned: bool = False
    data: Raw = EMPTY_RAW


class Push(_Msg):
    channel: str = ""
    pub: PublicationMsg | None = None
    join: JoinLeaveMsg | None = None
    leave: JoinLeaveMsg | None = None
    unsubscribe: UnsubscribePushMsg | None = None
    message: MessagePushMsg | None = None
    subscribe: SubscribePushMsg | None = None
    connect: ConnectResult | None = None
    disconnect: DisconnectPushMsg | None = None


class Reply(_Msg):
    id: Uint32 = 0
    error: ErrorMsg | None = None
    push: Push | None = None
    connect: ConnectResult | None = None
    subscribe: SubscribeResult | None = None
    unsubscribe: EmptyResult | None = None
    publish: EmptyResult | None = None
    presence: PresenceResult | None = None
    presence_stats: PresenceStatsResult | None = None
    history: HistoryResult | None = None
    ping: EmptyResult | None = None
    rpc: RPCResult | None = None
    refresh: RefreshResult | None = None
    sub_refresh: SubRefreshResult | None = None
