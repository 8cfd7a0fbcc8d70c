"""permessage-deflate (RFC 7692) against a real server with `websocket.compression` on."""

from __future__ import annotations

import json
import struct
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.sync.client import connect as ws_connect

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import API_KEY, SECRET, ServerProcess, require
from tests.wsclient import RawWebSocket, build_frame

TEXT, CONT, CLOSE = 0x1, 0x0, 0x8
RSV1 = 4  # build_frame's rsv is shifted by 4: 4 sets RSV1 (0x40)
OFFER = "permessage-deflate; client_max_window_bits"
LIMIT = 65536  # websocket.message_size_limit (the default, set explicitly below)

#: A large, very compressible publication (about 60 KB of JSON).
BIG_DATA: dict[str, Any] = {
    "rows": [{"id": i, "name": f"row number {i}", "tags": ["alpha", "beta"]} for i in range(1200)]
}


def deflated(payload: bytes, level: int = 6) -> bytes:
    """A message compressed as a client does (fresh context, sync flush, tail removed)."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    data = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4]


def inflated(payload: bytes) -> bytes:
    return zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")


def publish(server: ServerProcess, channel: str, data: Any) -> None:
    body = json.dumps({"channel": channel, "data": data}).encode()
    req = urllib.request.Request(
        server.api_url + "/publish", data=body, headers={"X-API-Key": API_KEY}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
        assert "error" not in json.loads(resp.read() or b"{}")


def recv_frame(ws: RawWebSocket) -> tuple[bool, int, bytes]:
    """One server frame with its RSV1 bit: (compressed, opcode, payload)."""
    first, second = ws._take(2)
    assert second & 0x80 == 0, "server frames must not be masked"
    assert first & 0x80, "the server sends every message in one frame"
    assert first & 0x30 == 0, "only RSV1 may be set"
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", ws._take(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", ws._take(8))
    return bool(first & 0x40), first & 0x0F, ws._take(length)


def recv_message(ws: RawWebSocket) -> tuple[bool, int, bytes]:
    """One message, inflated when it came compressed."""
    compressed, opcode, payload = recv_frame(ws)
    return compressed, opcode, inflated(payload) if compressed else payload


def replies(ws: RawWebSocket) -> Iterator[tuple[bool, dict[str, Any]]]:
    """JSON replies/pushes as they arrive, each with whether its frame was compressed."""
    while True:
        compressed, opcode, payload = recv_message(ws)
        assert opcode == TEXT, (opcode, payload[:40])
        for line in payload.decode().split("\n"):
            yield compressed, json.loads(line)


def close_code(ws: RawWebSocket) -> int:
    while True:
        _, opcode, payload = recv_frame(ws)
        if opcode == CLOSE:
            return int(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else 1005


@pytest.fixture
def compressed_server(make_server: Callable[..., ServerProcess]) -> ServerProcess:
    server = make_server(
        {"websocket": {"compression": True, "message_size_limit": LIMIT}, "log": {"level": "info"}}
    )
    ws = RawWebSocket(server.host, server.port)
    status, headers, _ = ws.handshake(headers={"Sec-WebSocket-Extensions": OFFER})
    ws.close()
    assert status == 101
    require(
        "permessage-deflate" in headers.get("sec-websocket-extensions", ""),
        "the server does not negotiate permessage-deflate yet (websocket.compression is not "
        "wired into HandshakePolicy.deflate / WebSocketConnection(deflate=...))",
    )
    return server


def raw_client(server: ServerProcess) -> RawWebSocket:
    """A raw client that negotiated permessage-deflate."""
    ws = RawWebSocket(server.host, server.port)
    status, headers, _ = ws.handshake(headers={"Sec-WebSocket-Extensions": OFFER})
    assert status == 101
    assert headers["sec-websocket-extensions"] == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    )
    return ws


def test_websockets_client_receives_a_large_publication(compressed_server: ServerProcess) -> None:
    server = compressed_server
    with ws_connect(server.ws_url, compression="deflate", max_size=None) as ws:
        assert ws.response is not None
        extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert extensions.startswith("permessage-deflate")
        token = make_token(SECRET, "u1", 3600)
        ws.send(json.dumps({"id": 1, "connect": {"token": token}}))
        assert "connect" in json.loads(ws.recv(timeout=5))
        ws.send(json.dumps({"id": 2, "subscribe": {"channel": "news"}}))
        assert "subscribe" in json.loads(ws.recv(timeout=5))
        publish(server, "news", BIG_DATA)
        push = json.loads(ws.recv(timeout=5))
    assert push == {"push": {"channel": "news", "pub": {"data": BIG_DATA}}}


def test_compressed_commands_and_replies(compressed_server: ServerProcess) -> None:
    ws = raw_client(compressed_server)
    token = make_token(SECRET, "u2", 3600)
    connect = json.dumps({"id": 1, "connect": {"token": token}}).encode()
    # A compressed command split over three frames (RSV1 on the first only).
    data = deflated(connect)
    ws.send_raw(
        build_frame(TEXT, data[:5], fin=False, rsv=RSV1)
        + build_frame(CONT, data[5:20], fin=False)
        + build_frame(CONT, data[20:])
    )
    compressed, reply = next(replies(ws))
    assert reply["id"] == 1 and "connect" in reply
    assert compressed, "replies go through WebSocketConnection.send, which compresses"
    # An uncompressed command is fine too on a compressed connection.
    ws.send_frame(TEXT, json.dumps({"id": 2, "subscribe": {"channel": "news"}}).encode())
    assert next(replies(ws))[1] == {"id": 2, "subscribe": {}}
    publish(compressed_server, "news", BIG_DATA)
    for compressed, item in replies(ws):
        if "push" in item:
            assert item["push"] == {"channel": "news", "pub": {"data": BIG_DATA}}
            assert compressed, "the hub fans out one compressed frame per publication"
            break


def test_deflate_bomb_closes_1009(compressed_server: ServerProcess) -> None:
    ws = raw_client(compressed_server)
    bomb = deflated(b"[" + b" " * (64 * LIMIT) + b"]", level=9)
    assert len(bomb) < LIMIT // 4
    ws.send_frame(TEXT, bomb, rsv=RSV1)
    assert close_code(ws) == 1009
    ws.expect_eof()


def test_bad_deflate_stream_closes_1007(compressed_server: ServerProcess) -> None:
    ws = raw_client(compressed_server)
    ws.send_frame(TEXT, b"\xff\xff\xff\xff", rsv=RSV1)
    assert close_code(ws) == 1007


def test_compressed_invalid_utf8_closes_1007(compressed_server: ServerProcess) -> None:
    ws = raw_client(compressed_server)
    ws.send_frame(TEXT, deflated(b'{"id":1,"connect":{}}\xc0\xaf'), rsv=RSV1)
    assert close_code(ws) == 1007


def test_rsv1_on_a_continuation_frame_closes_1002(compressed_server: ServerProcess) -> None:
    ws = raw_client(compressed_server)
    data = deflated(b'{"id":1,"connect":{}}')
    ws.send_raw(
        build_frame(TEXT, data[:4], fin=False, rsv=RSV1) + build_frame(CONT, data[4:], rsv=RSV1)
    )
    assert close_code(ws) == 1002


def test_rsv1_on_a_control_frame_closes_1002(compressed_server: ServerProcess) -> None:
    ws = raw_client(compressed_server)
    ws.send_frame(0x9, b"ping", rsv=RSV1)
    assert close_code(ws) == 1002


def test_rsv1_without_negotiation_closes_1002(compressed_server: ServerProcess) -> None:
    ws = RawWebSocket(compressed_server.host, compressed_server.port).open()  # no offer
    ws.send_frame(TEXT, deflated(b'{"id":1,"connect":{}}'), rsv=RSV1)
    assert ws.close_code() == 1002


def test_not_negotiated_when_disabled(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server()  # websocket.compression defaults to false
    ws = RawWebSocket(server.host, server.port)
    status, headers, _ = ws.handshake(headers={"Sec-WebSocket-Extensions": OFFER})
    assert status == 101
    assert "sec-websocket-extensions" not in headers
    ws.send_frame(TEXT, deflated(b'{"id":1,"connect":{}}'), rsv=RSV1)
    assert ws.close_code() == 1002
