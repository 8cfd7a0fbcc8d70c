"""The Protobuf protocol over WebSocket against a real server, byte-exact."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from msgspec import Raw

from centrifugo_fast.auth.jwt import make_token
from centrifugo_fast.protocol.codec_protobuf import PROTOBUF, _read_varint, encode_delimited
from centrifugo_fast.protocol.messages import (
    ChannelRequest,
    Command,
    ConnectRequest,
    PublishRequest,
    Reply,
    SubscribeRequest,
)
from tests.serverproc import API_KEY, SECRET, ServerProcess
from tests.wsclient import RawWebSocket


def _replies(ws: RawWebSocket) -> list[Reply]:
    opcode, payload = ws.recv_frame()
    assert opcode == 2, f"Protobuf must come in binary frames, got opcode {opcode}"
    replies, pos = [], 0
    while pos < len(payload):
        length, pos = _read_varint(payload, pos, len(payload))
        from centrifugo_fast.protocol.codec_protobuf import decode_message

        replies.append(decode_message(payload, pos, pos + length, Reply))
        pos += length
    return replies


def _send(ws: RawWebSocket, *commands: Command) -> None:
    ws.send_frame(2, b"".join(encode_delimited(c) for c in commands))


def _connected(srv: ServerProcess, how: str = "subprotocol") -> RawWebSocket:
    ws = RawWebSocket(srv.host, srv.port)
    if how == "subprotocol":
        status, headers, _ = ws.handshake(headers={"Sec-WebSocket-Protocol": "centrifuge-protobuf"})
        assert headers["sec-websocket-protocol"] == "centrifuge-protobuf"
    else:
        status, _, _ = ws.handshake(path=f"/connection/websocket?{how}=protobuf")
    assert status == 101
    _send(ws, Command(id=1, connect=ConnectRequest(token=make_token(SECRET, "pb", 600))))
    (reply,) = _replies(ws)
    assert reply.connect is not None and reply.connect.client
    return ws


def _publish(srv: ServerProcess, channel: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(
        f"{srv.api_url}/publish",
        data=json.dumps({"channel": channel, **body}).encode(),
        headers={"X-API-Key": API_KEY},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def test_protobuf_selected_three_ways(server: ServerProcess) -> None:
    for how in ("subprotocol", "format", "cf_protocol"):
        ws = _connected(server, how)
        _send(ws, Command(id=2, subscribe=SubscribeRequest(channel="news")))
        (reply,) = _replies(ws)
        assert reply.id == 2 and reply.subscribe is not None
        ws.close()


def test_subscribe_publish_and_binary_payload(server: ServerProcess) -> None:
    ws = _connected(server)
    _send(
        ws,
        Command(id=2, subscribe=SubscribeRequest(channel="chat:pb")),
        Command(id=3, publish=PublishRequest(channel="chat:pb", data=Raw(b"\x00\x01bin"))),
    )
    seen: list[Reply] = []
    while len(seen) < 3:
        seen += _replies(ws)
    by_id = {r.id: r for r in seen if r.id}
    assert by_id[2].subscribe is not None and by_id[3].publish is not None
    push = next(r.push for r in seen if r.push is not None)
    assert push.channel == "chat:pb" and push.pub is not None
    assert bytes(push.pub.data) == b"\x00\x01bin"
    assert push.pub.info is not None and push.pub.info.user == "pb"


def test_json_and_protobuf_subscribers_both_receive(server: ServerProcess) -> None:
    pb = _connected(server)
    _send(pb, Command(id=2, subscribe=SubscribeRequest(channel="mixed")))
    _replies(pb)
    js = RawWebSocket(server.host, server.port).open()
    js.connect(make_token(SECRET, "js", 600))
    js.send_json({"id": 2, "subscribe": {"channel": "mixed"}})
    js.reply(2)
    _publish(server, "mixed", {"data": {"both": True}})
    (reply,) = _replies(pb)
    assert reply.push is not None and reply.push.pub is not None
    assert bytes(reply.push.pub.data) == b'{"both": true}'
    assert js.push() == {"channel": "mixed", "pub": {"data": {"both": True}}}


def test_ping_pong_bytes(make_server: Any) -> None:
    srv = make_server({"client": {"ping_interval": "1s", "pong_timeout": "500ms"}})
    ws = _connected(srv)
    for _ in range(2):
        assert ws.recv_frame() == (2, b"\x00")
        ws.send_frame(2, b"\x00")
    assert ws.recv_frame() == (2, b"\x00")


def test_unsubscribe_and_errors(server: ServerProcess) -> None:
    ws = _connected(server)
    _send(ws, Command(id=2, subscribe=SubscribeRequest(channel="locked:x")))
    (reply,) = _replies(ws)
    assert reply.error is not None and reply.error.code == 103
    _send(ws, Command(id=3, unsubscribe=ChannelRequest(channel="news")))
    (reply,) = _replies(ws)
    assert reply.id == 3 and reply.unsubscribe is not None


def test_json_on_a_protobuf_connection_closes_3501(server: ServerProcess) -> None:
    ws = _connected(server)
    ws.send_frame(1, b'{"id":2,"subscribe":{"channel":"news"}}')
    assert ws.close_code() == 3501


def test_truncated_protobuf_closes_3501(server: ServerProcess) -> None:
    ws = _connected(server)
    ws.send_frame(2, b"\x10\x08\x02")  # length 16, frame ends after 2 bytes
    assert ws.close_code() == 3501


def test_protobuf_on_a_json_connection_closes_3501(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.connect(make_token(SECRET, "js", 600))
    ws.send_frame(2, encode_delimited(Command(id=2, subscribe=SubscribeRequest(channel="n"))))
    assert ws.close_code() == 3501


def test_non_utf8_payload_to_json_and_protobuf_subscribers(server: ServerProcess) -> None:
    pb = _connected(server)
    _send(pb, Command(id=2, subscribe=SubscribeRequest(channel="raw")))
    _replies(pb)
    import base64

    _publish(server, "raw", {"b64data": base64.b64encode(b"\xff\xfe").decode()})
    (reply,) = _replies(pb)
    assert reply.push is not None and reply.push.pub is not None
    assert bytes(reply.push.pub.data) == b"\xff\xfe"
    assert PROTOBUF.name == "protobuf"
