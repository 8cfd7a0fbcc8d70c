"""Protobuf codec: wire layout, interop with the official schema, and bad input.

The official generated classes shipped with centrifuge-python serve only as a reference
decoder/encoder here; the server never imports them.
"""

from __future__ import annotations

from typing import Any

import pytest
from centrifuge.protocol import client_pb2

from centrifugo_fast.engine.types import ClientInfo, Publication
from centrifugo_fast.protocol.codec import CodecError
from centrifugo_fast.protocol.codec_protobuf import (
    PROTOBUF,
    _varint,
    decode_message,
    encode_delimited,
)
from centrifugo_fast.protocol.messages import (
    Command,
    ConnectResult,
    EmptyResult,
    ErrorMsg,
    HistoryRequest,
    PresenceResult,
    PresenceStatsResult,
    Push,
    Reply,
    SubscribeRequest,
    SubscribeResult,
    UnsubscribePushMsg,
)


def _official(data: bytes) -> Any:
    """Parse one delimited Reply with the official schema."""
    length = data[0]
    assert length == len(data) - 1, "one short message expected"
    reply = client_pb2.Reply()
    reply.ParseFromString(data[1:])
    return reply


def _delimited(message: Any) -> bytes:
    body: bytes = message.SerializeToString()
    return _varint(len(body)) + body


def test_empty_result_is_still_written() -> None:
    # Reply{id:5, publish:{}} = 08 05 42 00, framed with its length 04.
    assert PROTOBUF.encode_reply(Reply(id=5, publish=EmptyResult())) == bytes.fromhex("0408054200")
    assert PROTOBUF.ping_reply == b"\x00"
    assert PROTOBUF.encode_reply(Reply()) == b"\x00"


def test_replies_parse_with_the_official_schema() -> None:
    connect = _official(
        PROTOBUF.encode_reply(
            Reply(
                id=1,
                connect=ConnectResult(
                    client="c1", version="1", ping=25, pong=True, subs={"news": SubscribeResult()}
                ),
            )
        )
    )
    assert connect.id == 1 and connect.connect.client == "c1" and connect.connect.pong
    assert "news" in connect.connect.subs
    error = _official(PROTOBUF.encode_reply(Reply(id=2, error=ErrorMsg(code=103, message="x"))))
    assert (error.error.code, error.error.message) == (103, "x")
    stats = PROTOBUF.encode_reply(
        Reply(id=3, presence_stats=PresenceStatsResult(num_clients=0, num_users=0))
    )
    assert _official(stats).HasField("presence_stats")
    presence = PresenceResult(presence={"c": PROTOBUF.client_info(ClientInfo("u", "c", b"\x01"))})
    parsed = _official(PROTOBUF.encode_reply(Reply(id=4, presence=presence)))
    assert parsed.presence.presence["c"].conn_info == b"\x01"


def test_publication_push() -> None:
    pub = Publication(
        data=b"\x00binary\xff",
        offset=1,
        epoch="ep",
        tags={"k": "v"},
        info=ClientInfo("u", "c"),
    )
    encoded = PROTOBUF.encode_push(Push(channel="news", pub=PROTOBUF.publication(pub)))
    parsed = _official(encoded)
    assert parsed.push.channel == "news"
    assert parsed.push.pub.data == b"\x00binary\xff"
    assert parsed.push.pub.offset == 1
    # centrifuge-python's bundled schema predates Publication.epoch (14): check it ourselves.
    ours = decode_message(encoded[1:], 0, len(encoded) - 1, Reply)
    assert ours.push.pub.epoch == "ep"
    assert dict(parsed.push.pub.tags) == {"k": "v"} and parsed.push.pub.info.user == "u"
    unsub = Push(channel="c", unsubscribe=UnsubscribePushMsg(code=2000, reason="r"))
    parsed = _official(PROTOBUF.encode_push(unsub))
    assert (parsed.push.unsubscribe.code, parsed.push.unsubscribe.reason) == (2000, "r")


def test_commands_from_the_official_schema() -> None:
    data = (
        _delimited(
            client_pb2.Command(
                id=1,
                connect=client_pb2.ConnectRequest(
                    token="t",
                    name="js",
                    subs={"ch": client_pb2.SubscribeRequest(recover=True, offset=9, epoch="e")},
                    headers={"a": "b"},
                ),
            )
        )
        + _delimited(
            client_pb2.Command(
                id=2, subscribe=client_pb2.SubscribeRequest(channel="news", flag=1, delta="fossil")
            )
        )
        + _delimited(
            client_pb2.Command(id=3, history=client_pb2.HistoryRequest(channel="h", limit=-1))
        )
    )
    first, second, third = PROTOBUF.decode_commands(data)
    assert first.connect is not None and first.connect.token == "t"
    assert first.connect.subs["ch"].offset == 9 and first.connect.headers == {"a": "b"}
    assert second.subscribe is not None and second.subscribe.delta == "fossil"
    assert third.history is not None and third.history.limit == -1


def test_round_trip_of_our_own_commands() -> None:
    commands = [
        Command(id=1, subscribe=SubscribeRequest(channel="x", recover=True, offset=2**40)),
        Command(id=2, history=HistoryRequest(channel="y", limit=-5, reverse=True)),
    ]
    data = b"".join(encode_delimited(c) for c in commands)
    assert PROTOBUF.decode_commands(data) == commands


def test_pong_is_a_zero_byte_and_unknown_fields_are_skipped() -> None:
    (pong,) = PROTOBUF.decode_commands(b"\x00")
    assert pong == Command()
    # Command with id=7 plus an unknown field 99 (varint) and unknown 100 (bytes).
    body = b"\x08\x07" + _varint(99 << 3) + b"\x05" + _varint((100 << 3) | 2) + b"\x02ab"
    (cmd,) = PROTOBUF.decode_commands(_varint(len(body)) + body)
    assert cmd.id == 7


@pytest.mark.parametrize(
    "data",
    [
        b"",  # empty frame
        b"\x80",  # truncated length varint
        b"\x05\x08",  # length beyond the frame
        b"\x02\x08\x80",  # truncated id varint
        b"\x02\x0a\x00",  # id (field 1) with a length-delimited wire type
        b"\x03\x22\x05a",  # connect sub-message longer than the command
        b"\x05\x22\x03\x0a\x01\xff",  # connect.token holding invalid UTF-8
        b"\x02\x0f\x00",  # wire type 7 does not exist
        b"\x0b" + b"\xff" * 11,  # a varint over 10 bytes
        b'{"id":1,"connect":{}}',  # JSON on a Protobuf connection
    ],
)
def test_bad_input_raises_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError):
        PROTOBUF.decode_commands(data)
