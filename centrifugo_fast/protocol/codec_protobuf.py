"""Protobuf encoding of the client protocol (spec/client-protocol.md §2.2, §2.5).

A hand-written codec over the same message structs as the JSON codec: each struct has a
table of (field number, attribute, kind). Commands arrive varint-length-delimited in binary
frames; replies go out the same way. proto3 rules: zero scalars are omitted, a sub-message
that is set is always written (an empty one as tag + length 0, which the SDKs rely on), and
unknown fields are skipped by wire type. Payload (`bytes`) fields carry raw application bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import Raw

from ..engine.types import ClientInfo, Publication
from .codec import CodecError
from .messages import (
    EMPTY_RAW,
    ChannelRequest,
    ClientInfoMsg,
    Command,
    ConnectRequest,
    ConnectResult,
    DisconnectPushMsg,
    EmptyRequest,
    EmptyResult,
    EmulationRequest,
    ErrorMsg,
    HistoryRequest,
    HistoryResult,
    JoinLeaveMsg,
    MessagePushMsg,
    PresenceResult,
    PresenceStatsResult,
    PublicationMsg,
    PublishRequest,
    Push,
    RefreshRequest,
    RefreshResult,
    Reply,
    RPCRequest,
    RPCResult,
    SendRequest,
    StreamPositionMsg,
    SubRefreshRequest,
    SubRefreshResult,
    SubscribePushMsg,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribePushMsg,
)

# Field kinds.
UINT = 0  # uint32/uint64 varint
INT = 1  # int32/int64 varint, two's complement
BOOL = 2
STRING = 3
BYTES = 4  # msgspec.Raw holding raw bytes
MESSAGE = 5
REPEATED = 6  # repeated message
MAP_STR = 7  # map<string, string>
MAP_MSG = 8  # map<string, message>

Field = tuple[int, str, int, Any]

SCHEMA: dict[type[msgspec.Struct], list[Field]] = {
    ClientInfoMsg: [
        (1, "user", STRING, None),
        (2, "client", STRING, None),
        (3, "conn_info", BYTES, None),
        (4, "chan_info", BYTES, None),
    ],
    PublicationMsg: [
        (4, "data", BYTES, None),
        (5, "info", MESSAGE, ClientInfoMsg),
        (6, "offset", UINT, None),
        (7, "tags", MAP_STR, None),
        (8, "delta", BOOL, None),
        (9, "time", INT, None),
        (10, "channel", STRING, None),
        (14, "epoch", STRING, None),
    ],
    StreamPositionMsg: [(1, "offset", UINT, None), (2, "epoch", STRING, None)],
    ErrorMsg: [(1, "code", UINT, None), (2, "message", STRING, None), (3, "temporary", BOOL, None)],
    SubscribeRequest: [
        (1, "channel", STRING, None),
        (2, "token", STRING, None),
        (3, "recover", BOOL, None),
        (6, "epoch", STRING, None),
        (7, "offset", UINT, None),
        (8, "data", BYTES, None),
        (9, "positioned", BOOL, None),
        (10, "recoverable", BOOL, None),
        (11, "join_leave", BOOL, None),
        (12, "delta", STRING, None),
        (14, "flag", INT, None),
    ],
    ConnectRequest: [
        (1, "token", STRING, None),
        (2, "data", BYTES, None),
        (3, "subs", MAP_MSG, SubscribeRequest),
        (4, "name", STRING, None),
        (5, "version", STRING, None),
        (6, "headers", MAP_STR, None),
    ],
    ChannelRequest: [(1, "channel", STRING, None)],
    PublishRequest: [(1, "channel", STRING, None), (2, "data", BYTES, None)],
    HistoryRequest: [
        (1, "channel", STRING, None),
        (7, "limit", INT, None),
        (8, "since", MESSAGE, StreamPositionMsg),
        (9, "reverse", BOOL, None),
    ],
    RPCRequest: [(1, "data", BYTES, None), (2, "method", STRING, None)],
    SendRequest: [(1, "data", BYTES, None)],
    RefreshRequest: [(1, "token", STRING, None)],
    SubRefreshRequest: [(1, "channel", STRING, None), (2, "token", STRING, None)],
    EmptyRequest: [],
    EmulationRequest: [
        (1, "node", STRING, None),
        (2, "session", STRING, None),
        (3, "data", BYTES, None),
    ],
    Command: [
        (1, "id", UINT, None),
        (4, "connect", MESSAGE, ConnectRequest),
        (5, "subscribe", MESSAGE, SubscribeRequest),
        (6, "unsubscribe", MESSAGE, ChannelRequest),
        (7, "publish", MESSAGE, PublishRequest),
        (8, "presence", MESSAGE, ChannelRequest),
        (9, "presence_stats", MESSAGE, ChannelRequest),
        (10, "history", MESSAGE, HistoryRequest),
        (11, "ping", MESSAGE, EmptyRequest),
        (12, "send", MESSAGE, SendRequest),
        (13, "rpc", MESSAGE, RPCRequest),
        (14, "refresh", MESSAGE, RefreshRequest),
        (15, "sub_refresh", MESSAGE, SubRefreshRequest),
    ],
    SubscribeResult: [
        (1, "expires", BOOL, None),
        (2, "ttl", UINT, None),
        (3, "recoverable", BOOL, None),
        (6, "epoch", STRING, None),
        (7, "publications", REPEATED, PublicationMsg),
        (8, "recovered", BOOL, None),
        (9, "offset", UINT, None),
        (10, "positioned", BOOL, None),
        (11, "data", BYTES, None),
        (12, "was_recovering", BOOL, None),
        (13, "delta", BOOL, None),
    ],
    ConnectResult: [
        (1, "client", STRING, None),
        (2, "version", STRING, None),
        (3, "expires", BOOL, None),
        (4, "ttl", UINT, None),
        (5, "data", BYTES, None),
        (6, "subs", MAP_MSG, SubscribeResult),
        (7, "ping", UINT, None),
        (8, "pong", BOOL, None),
        (9, "session", STRING, None),
        (10, "node", STRING, None),
        (11, "time", INT, None),
    ],
    RefreshResult: [
        (1, "client", STRING, None),
        (2, "version", STRING, None),
        (3, "expires", BOOL, None),
        (4, "ttl", UINT, None),
    ],
    SubRefreshResult: [(1, "expires", BOOL, None), (2, "ttl", UINT, None)],
    EmptyResult: [],
    PresenceResult: [(1, "presence", MAP_MSG, ClientInfoMsg)],
    PresenceStatsResult: [(1, "num_clients", UINT, None), (2, "num_users", UINT, None)],
    HistoryResult: [
        (1, "publications", REPEATED, PublicationMsg),
        (2, "epoch", STRING, None),
        (3, "offset", UINT, None),
    ],
    RPCResult: [(1, "data", BYTES, None)],
    JoinLeaveMsg: [(1, "info", MESSAGE, ClientInfoMsg)],
    UnsubscribePushMsg: [(2, "code", UINT, None), (3, "reason", STRING, None)],
    DisconnectPushMsg: [(1, "code", UINT, None), (2, "reason", STRING, None)],
    MessagePushMsg: [(1, "data", BYTES, None)],
    SubscribePushMsg: [
        (1, "recoverable", BOOL, None),
        (4, "epoch", STRING, None),
        (5, "offset", UINT, None),
        (6, "positioned", BOOL, None),
        (7, "data", BYTES, None),
    ],
    Push: [
        (2, "channel", STRING, None),
        (4, "pub", MESSAGE, PublicationMsg),
        (5, "join", MESSAGE, JoinLeaveMsg),
        (6, "leave", MESSAGE, JoinLeaveMsg),
        (7, "unsubscribe", MESSAGE, UnsubscribePushMsg),
        (8, "message", MESSAGE, MessagePushMsg),
        (9, "subscribe", MESSAGE, SubscribePushMsg),
        (11, "disconnect", MESSAGE, DisconnectPushMsg),
    ],
    Reply: [
        (1, "id", UINT, None),
        (2, "error", MESSAGE, ErrorMsg),
        (4, "push", MESSAGE, Push),
        (5, "connect", MESSAGE, ConnectResult),
        (6, "subscribe", MESSAGE, SubscribeResult),
        (7, "unsubscribe", MESSAGE, EmptyResult),
        (8, "publish", MESSAGE, EmptyResult),
        (9, "presence", MESSAGE, PresenceResult),
        (10, "presence_stats", MESSAGE, PresenceStatsResult),
        (11, "history", MESSAGE, HistoryResult),
        (12, "ping", MESSAGE, EmptyResult),
        (13, "rpc", MESSAGE, RPCResult),
        (14, "refresh", MESSAGE, RefreshResult),
        (15, "sub_refresh", MESSAGE, SubRefreshResult),
    ],
}

_WIRE_VARINT = 0
_WIRE_I64 = 1
_WIRE_LEN = 2
_WIRE_I32 = 5
_LEN_KINDS = (STRING, BYTES, MESSAGE, REPEATED, MAP_STR, MAP_MSG)
_MAX_DEPTH = 8


# ---- encoding ----


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int32/int64 negatives: ten-byte two's complement
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return _varint((number << 3) | wire)


def _len_field(number: int, payload: bytes) -> bytes:
    return _tag(number, _WIRE_LEN) + _varint(len(payload)) + payload


def _encode_client_info(info: ClientInfoMsg) -> bytes:
    # Hand-written: a ClientInfo rides on most publications (fan-out encodes it per push).
    out = b""
    if info.user:
        out += _len_field(1, info.user.encode())
    if info.client:
        out += _len_field(2, info.client.encode())
    conn_info = bytes(info.conn_info)
    if conn_info:
        out += _len_field(3, conn_info)
    chan_info = bytes(info.chan_info)
    if chan_info:
        out += _len_field(4, chan_info)
    return out


def _encode_publication(pub: PublicationMsg) -> bytes:
    # Hand-written: the one message encoded for every publication fanned out.
    out = b""
    data = bytes(pub.data)
    if data:
        out += b"\x22" + _varint(len(data)) + data  # field 4, length-delimited
    if pub.info is not None:
        info = _encode_client_info(pub.info)
        out += b"\x2a" + _varint(len(info)) + info  # field 5
    if pub.offset:
        out += b"\x30" + _varint(pub.offset)  # field 6, varint
    if pub.tags:
        for key, value in pub.tags.items():
            entry = _len_field(1, key.encode()) + _len_field(2, value.encode())
            out += _len_field(7, entry)
    if pub.delta:
        out += b"\x40\x01"  # field 8
    if pub.time:
        out += b"\x48" + _varint(pub.time)  # field 9
    if pub.channel:
        out += _len_field(10, pub.channel.encode())
    if pub.epoch:
        out += _len_field(14, pub.epoch.encode())
    return out


_PUSH_MESSAGES = (
    (b"\x22", "pub"),  # field 4
    (b"\x2a", "join"),
    (b"\x32", "leave"),
    (b"\x3a", "unsubscribe"),
    (b"\x42", "message"),
    (b"\x4a", "subscribe"),
    (b"\x5a", "disconnect"),
)


def _encode_push(push: Push) -> bytes:
    # Hand-written: every fanned-out publication is a Push in a Reply envelope.
    out = _len_field(2, push.channel.encode()) if push.channel else b""
    pub = push.pub
    if pub is not None:
        body = _encode_publication(pub)
        return out + b"\x22" + _varint(len(body)) + body
    for tag, name in _PUSH_MESSAGES[1:]:
        value = getattr(push, name)
        if value is not None:
            body = _encode_message(value)
            out += tag + _varint(len(body)) + body
    return out


def _encode_message(msg: msgspec.Struct) -> bytes:
    fast = _FAST_ENCODERS.get(type(msg))
    if fast is not None:
        return fast(msg)
    parts: list[bytes] = []
    for number, name, kind, _sub in SCHEMA[type(msg)]:
        value = getattr(msg, name)
        if kind == STRING:
            if value:
                parts.append(_len_field(number, value.encode()))
        elif kind == BYTES:
            data = bytes(value)
            if data:
                parts.append(_len_field(number, data))
        elif kind == UINT or kind == INT:
            if value:
                parts.append(_tag(number, _WIRE_VARINT) + _varint(value))
        elif kind == BOOL:
            if value:
                parts.append(_tag(number, _WIRE_VARINT) + b"\x01")
        elif kind == MESSAGE:
            if value is not None:  # set but empty still goes on the wire
                parts.append(_len_field(number, _encode_message(value)))
        elif kind == REPEATED:
            for item in value:
                parts.append(_len_field(number, _encode_message(item)))
        elif kind == MAP_STR:
            for key, item in value.items():
                entry = _len_field(1, key.encode()) + _len_field(2, item.encode())
                parts.append(_len_field(number, entry))
        else:  # MAP_MSG
            for key, item in value.items():
                entry = _len_field(1, key.encode()) + _len_field(2, _encode_message(item))
                parts.append(_len_field(number, entry))
    return b"".join(parts)


def encode_delimited(msg: msgspec.Struct) -> bytes:
    """One message with its varint length prefix."""
    body = _encode_message(msg)
    return _varint(len(body)) + body


# ---- decoding ----


def _read_varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise CodecError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise CodecError("varint too long")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _skip(data: bytes, pos: int, end: int, wire: int) -> int:
    if wire == _WIRE_VARINT:
        return _read_varint(data, pos, end)[1]
    if wire == _WIRE_I64:
        pos += 8
    elif wire == _WIRE_I32:
        pos += 4
    elif wire == _WIRE_LEN:
        length, pos = _read_varint(data, pos, end)
        pos += length
    else:
        raise CodecError(f"unsupported wire type {wire}")
    if pos > end:
        raise CodecError("field beyond the message")
    return pos


def _decode_map_entry(data: bytes, pos: int, end: int, sub: Any, depth: int) -> tuple[str, Any]:
    key = ""
    value: Any = "" if sub is None else None
    while pos < end:
        tag, pos = _read_varint(data, pos, end)
        number, wire = tag >> 3, tag & 7
        if wire != _WIRE_LEN or number not in (1, 2):
            pos = _skip(data, pos, end, wire)
            continue
        length, pos = _read_varint(data, pos, end)
        stop = pos + length
        if stop > end:
            raise CodecError("map entry beyond the message")
        if number == 1:
            key = _text(data[pos:stop])
        elif sub is None:
            value = _text(data[pos:stop])
        else:
            value = _decode_message(data, pos, stop, sub, depth + 1)
        pos = stop
    if value is None:
        value = sub()
    return key, value


def _text(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise CodecError("invalid UTF-8 in a string field") from exc


def _decode_message(data: bytes, pos: int, end: int, cls: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        raise CodecError("message nested too deeply")
    fields = _FIELDS[cls]
    values: dict[str, Any] = {}
    while pos < end:
        tag, pos = _read_varint(data, pos, end)
        number, wire = tag >> 3, tag & 7
        spec = fields.get(number)
        if spec is None:
            pos = _skip(data, pos, end, wire)
            continue
        name, kind, sub = spec
        expected = _WIRE_LEN if kind in _LEN_KINDS else _WIRE_VARINT
        if wire != expected:
            raise CodecError(f"field {name} has wire type {wire}")
        if expected == _WIRE_VARINT:
            value, pos = _read_varint(data, pos, end)
            if kind == BOOL:
                values[name] = value != 0
            elif kind == INT:
                values[name] = _signed(value)
            else:
                values[name] = value
            continue
        length, pos = _read_varint(data, pos, end)
        stop = pos + length
        if stop > end:
            raise CodecError(f"field {name} beyond the message")
        if kind == STRING:
            values[name] = _text(data[pos:stop])
        elif kind == BYTES:
            values[name] = Raw(data[pos:stop])
        elif kind == MESSAGE:
            values[name] = _decode_message(data, pos, stop, sub, depth + 1)
        elif kind == REPEATED:
            values.setdefault(name, []).append(_decode_message(data, pos, stop, sub, depth + 1))
        else:
            key, item = _decode_map_entry(data, pos, stop, sub if kind == MAP_MSG else None, depth)
            values.setdefault(name, {})[key] = item
        pos = stop
    try:
        return cls(**values)
    except (TypeError, msgspec.ValidationError) as exc:
        raise CodecError(f"invalid {cls.__name__}: {exc}") from exc


_FAST_ENCODERS: dict[type[Any], Callable[[Any], bytes]] = {
    PublicationMsg: _encode_publication,
    ClientInfoMsg: _encode_client_info,
    Push: _encode_push,
}

_FIELDS: dict[Any, dict[int, tuple[str, int, Any]]] = {
    cls: {number: (name, kind, sub) for number, name, kind, sub in fields}
    for cls, fields in SCHEMA.items()
}


class ProtobufCodec:
    """The Protobuf protocol codec (varint-delimited messages in binary frames)."""

    name = "protobuf"
    ws_opcode = 2
    #: An empty Reply with its zero length prefix: the single byte 0x00.
    ping_reply = b"\x00"

    def decode_commands(self, data: bytes) -> list[Command]:
        """Decode a frame holding one or more length-delimited commands."""
        commands: list[Command] = []
        pos, end = 0, len(data)
        while pos < end:
            length, pos = _read_varint(data, pos, end)
            stop = pos + length
            if stop > end:
                raise CodecError("command length beyond the frame")
            commands.append(_decode_message(data, pos, stop, Command))
            pos = stop
        if not commands:
            raise CodecError("empty command batch")
        for command in commands:
            if command.id > 0xFFFFFFFF:
                raise CodecError("command id out of range")
        return commands

    def encode_reply(self, reply: Reply) -> bytes:
        """Encode one reply with its length prefix."""
        return encode_delimited(reply)

    def encode_push(self, push: Push) -> bytes:
        """Encode a push in its bidirectional Reply envelope (Reply field 4)."""
        body = _encode_push(push)
        reply = b"\x22" + _varint(len(body)) + body
        return _varint(len(reply)) + reply

    def join(self, payloads: list[bytes]) -> bytes:
        """Concatenate length-delimited replies into one frame payload."""
        return b"".join(payloads)

    def payload(self, data: bytes) -> Raw:
        """Payload bytes go on the wire untouched."""
        return Raw(data) if data else EMPTY_RAW

    def client_info(self, info: ClientInfo) -> ClientInfoMsg:
        """Wire form of a ClientInfo."""
        return ClientInfoMsg(
            user=info.user,
            client=info.client,
            conn_info=self.payload(info.conn_info),
            chan_info=self.payload(info.chan_info),
        )

    def delta_publication(self, pub: Publication, data: bytes, is_delta: bool) -> PublicationMsg:
        """A publication for a delta subscriber: raw bytes of the payload or fossil delta."""
        return PublicationMsg(
            data=self.payload(data),
            info=self.client_info(pub.info) if pub.info is not None else None,
            offset=pub.offset,
            tags=pub.tags or {},
            delta=is_delta,
            epoch=pub.epoch if pub.offset == 1 else "",
        )

    def publication(self, pub: Publication) -> PublicationMsg:
        """Wire form of a Publication (epoch only on offset 1, as Centrifugo sends it)."""
        return PublicationMsg(
            data=self.payload(pub.data),
            info=self.client_info(pub.info) if pub.info is not None else None,
            offset=pub.offset,
            tags=pub.tags or {},
            epoch=pub.epoch if pub.offset == 1 else "",
        )


PROTOBUF = ProtobufCodec()


def decode_emulation_request(data: bytes) -> EmulationRequest:
    """Decode the (not length-prefixed) EmulationRequest body of `POST /emulation`."""
    request: EmulationRequest = _decode_message(data, 0, len(data), EmulationRequest)
    return request


#: For tests: decode one delimited message of a given type.
decode_message: Callable[[bytes, int, int, Any], Any] = _decode_message
