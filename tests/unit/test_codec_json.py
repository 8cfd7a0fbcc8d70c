"""JSON codec: batch decoding rules and the spec's omission table."""

from __future__ import annotations

import pytest

from centrifugo_fast.engine.types import ClientInfo, Publication
from centrifugo_fast.protocol.codec import CodecError, PayloadEncodingError
from centrifugo_fast.protocol.codec_json import JSON, embed, raw_bytes
from centrifugo_fast.protocol.messages import (
    ConnectResult,
    EmptyResult,
    ErrorMsg,
    HistoryResult,
    PresenceResult,
    PresenceStatsResult,
    Push,
    Reply,
    UnsubscribePushMsg,
)


def test_decodes_newline_joined_batch_in_order() -> None:
    cmds = JSON.decode_commands(
        b'{"id":1,"connect":{"token":"t","name":"js"}}\n{"id":2,"subscribe":{"channel":"a"}}\n'
    )
    assert [c.id for c in cmds] == [1, 2]
    assert cmds[0].connect is not None and cmds[0].connect.token == "t"
    assert cmds[1].subscribe is not None and cmds[1].subscribe.channel == "a"


def test_unknown_fields_are_ignored() -> None:
    (cmd,) = JSON.decode_commands(b'{"id":3,"subscribe":{"channel":"a","tf":{"op":1},"x":1}}')
    assert cmd.subscribe is not None and cmd.subscribe.channel == "a"


@pytest.mark.parametrize(
    "data",
    [b"", b"   ", b"not json", b'{"id":-1}', b'{"id":"1"}', b'{"id":4294967296}', b"[1,2]"],
)
def test_bad_batches_raise(data: bytes) -> None:
    with pytest.raises(CodecError):
        JSON.decode_commands(data)


def test_raw_data_is_kept_byte_exact() -> None:
    (cmd,) = JSON.decode_commands(b'{"id":1,"publish":{"channel":"c","data":{"b": 1.50, "a":2}}}')
    assert cmd.publish is not None
    assert raw_bytes(cmd.publish.data) == b'{"b": 1.50, "a":2}'


def test_null_and_absent_data_are_empty() -> None:
    cmds = JSON.decode_commands(b'{"id":1,"publish":{"data":null}}\n{"id":2,"publish":{}}')
    assert [raw_bytes(c.publish.data) for c in cmds if c.publish] == [b"", b""]


def test_result_present_even_when_empty_and_no_null_error() -> None:
    assert JSON.encode_reply(Reply(id=3, publish=EmptyResult())) == b'{"id":3,"publish":{}}'
    assert b"null" not in JSON.encode_reply(Reply(id=3, publish=EmptyResult()))


def test_always_present_fields() -> None:
    assert JSON.encode_reply(Reply(id=1, presence=PresenceResult(presence={}))) == (
        b'{"id":1,"presence":{"presence":{}}}'
    )
    assert (
        JSON.encode_reply(
            Reply(id=1, presence_stats=PresenceStatsResult(num_clients=0, num_users=0))
        )
        == b'{"id":1,"presence_stats":{"num_clients":0,"num_users":0}}'
    )
    assert (
        JSON.encode_reply(Reply(id=1, history=HistoryResult(publications=[], epoch="", offset=0)))
        == b'{"id":1,"history":{"publications":[],"epoch":"","offset":0}}'
    )
    info = JSON.client_info(ClientInfo("", ""))
    assert JSON.encode_reply(Reply(push=Push(join=None, leave=None, channel="c"))) == (
        b'{"push":{"channel":"c"}}'
    )
    assert (info.user, info.client) == ("", "")
    unsub = Push(channel="c", unsubscribe=UnsubscribePushMsg(code=2000, reason=""))
    assert (
        JSON.encode_push(unsub)
        == b'{"push":{"channel":"c","unsubscribe":{"code":2000,"reason":""}}}'
    )


def test_zero_values_are_omitted() -> None:
    assert JSON.encode_reply(Reply(id=1, connect=ConnectResult(client="c"))) == (
        b'{"id":1,"connect":{"client":"c"}}'
    )
    err = Reply(id=2, error=ErrorMsg(code=103, message="permission denied"))
    assert JSON.encode_reply(err) == b'{"id":2,"error":{"code":103,"message":"permission denied"}}'
    temp = Reply(id=2, error=ErrorMsg(code=100, message="internal server error", temporary=True))
    assert b'"temporary":true' in JSON.encode_reply(temp)


def test_ping_is_empty_object() -> None:
    assert JSON.ping_reply == b"{}"
    assert JSON.encode_reply(Reply()) == b"{}"


def test_publication_embedding_strips_raw_newlines() -> None:
    pub = Publication(data=b'{\n  "a": "x\\ny"\n}', offset=0)
    push = JSON.encode_push(Push(channel="c", pub=JSON.publication(pub)))
    assert push == b'{"push":{"channel":"c","pub":{"data":{  "a": "x\\ny"}}}}'


def test_epoch_only_on_first_offset() -> None:
    first = JSON.publication(Publication(data=b"1", offset=1, epoch="ep"))
    later = JSON.publication(Publication(data=b"1", offset=2, epoch="ep"))
    assert first.epoch == "ep" and later.epoch == ""


def test_non_json_bytes_cannot_be_embedded() -> None:
    with pytest.raises(PayloadEncodingError):
        embed(b"\x00\x01", checked=False)
    assert bytes(embed(b'"ok"', checked=False)) == b'"ok"'
