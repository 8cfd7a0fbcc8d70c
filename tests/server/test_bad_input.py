"""Bad input of every kind the core issue lists: a clear code, no crash, no effect on others."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import SECRET, ServerProcess
from tests.wsclient import RawWebSocket


def _connected(server: ServerProcess, user: str = "u1") -> RawWebSocket:
    ws = RawWebSocket(server.host, server.port).open()
    reply = ws.connect(make_token(SECRET, user, 3600))
    assert "connect" in reply, reply
    return ws


@pytest.fixture
def bystander(server: ServerProcess) -> Iterator[RawWebSocket]:
    """A healthy subscribed client that must stay unaffected by others' bad input."""
    ws = _connected(server, "bystander")
    ws.send_json({"id": 2, "subscribe": {"channel": "news"}})
    assert "subscribe" in ws.reply(2)
    yield ws
    # It still receives publications after the bad input.
    import urllib.request

    req = urllib.request.Request(
        server.api_url + "/publish",
        data=b'{"channel":"news","data":{"still":"alive"}}',
        headers={"X-API-Key": "test-api-key"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    assert ws.push() == {"channel": "news", "pub": {"data": {"still": "alive"}}}
    ws.close()
    assert server.alive()


def test_malformed_http_is_400(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = RawWebSocket(server.host, server.port)
    ws.send_raw(b"GARBAGE /\x00\x01 NOT-HTTP\r\n\r\n")
    status, _, _ = ws.read_http_response()
    assert status == 400
    ws.expect_eof()


def test_unmasked_client_frame_closes_1002(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_frame(1, b'{"id":1,"connect":{}}', mask=False)
    assert ws.close_code() == 1002


@pytest.mark.parametrize("rsv", [1, 2, 4])
def test_reserved_bits_close_1002(server: ServerProcess, bystander: RawWebSocket, rsv: int) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_frame(1, b"{}", rsv=rsv)
    assert ws.close_code() == 1002


@pytest.mark.parametrize("opcode", [3, 7, 11, 15])
def test_reserved_opcodes_close_1002(
    server: ServerProcess, bystander: RawWebSocket, opcode: int
) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_frame(opcode, b"x")
    assert ws.close_code() == 1002


def test_oversized_frame_closes_1009_before_payload(
    server: ServerProcess, bystander: RawWebSocket
) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    # Only the header announcing 1 MiB is sent: the server must fail fast.
    ws.send_frame(2, b"", length_override=1024 * 1024)
    assert ws.close_code() == 1009


def test_message_size_limit_applies_to_fragmented_messages(
    server: ServerProcess, bystander: RawWebSocket
) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    chunk = b"x" * 40000
    ws.send_frame(1, chunk, fin=False)
    ws.send_frame(0, chunk, fin=True)
    assert ws.close_code() == 1009


def test_invalid_utf8_text_closes_1007(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_frame(1, b'{"id":1,"connect":{"name":"\xff\xfe"}}')
    assert ws.close_code() == 1007


def test_frame_that_is_not_json_closes_3501(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_frame(1, b"this is not json")
    assert ws.close_code() == 3501


def test_empty_frame_closes_3501(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_frame(1, b"")
    assert ws.close_code() == 3501


def test_wrong_field_type_closes_3501(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_frame(1, b'{"id":"one","connect":{}}')
    assert ws.close_code() == 3501


def test_command_before_connect_closes_3501(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_json({"id": 1, "subscribe": {"channel": "news"}})
    assert ws.close_code() == 3501


def test_unknown_command_closes_3501(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = _connected(server)
    ws.send_json({"id": 2, "frobnicate": {}})
    assert ws.close_code() == 3501


def test_second_connect_closes_3501(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = _connected(server)
    ws.send_json({"id": 2, "connect": {}})
    assert ws.close_code() == 3501


def test_command_without_id_closes_3501(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = _connected(server)
    ws.send_json({"subscribe": {"channel": "news"}})
    # id 0 without `send` is a pong; no ping is outstanding, so it is an unsolicited pong.
    assert ws.close_code() == 3501


def test_bad_token_closes_3500(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_json({"id": 1, "connect": {"token": make_token("another-secret" * 3, "u1", 60)}})
    assert ws.close_code() == 3500


def test_garbage_token_closes_3500(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_json({"id": 1, "connect": {"token": "not.a.jwt"}})
    assert ws.close_code() == 3500


def test_alg_none_token_closes_3500(server: ServerProcess, bystander: RawWebSocket) -> None:
    import base64
    import json

    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    token = b64({"alg": "none", "typ": "JWT"}) + "." + b64({"sub": "admin"}) + "."
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_json({"id": 1, "connect": {"token": token}})
    assert ws.close_code() == 3500


def test_expired_token_is_error_109_and_connection_unusable(
    server: ServerProcess, bystander: RawWebSocket
) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    reply = ws.connect(make_token(SECRET, "u1", extra={"exp": int(time.time()) - 10}))
    assert reply == {"id": 1, "error": {"code": 109, "message": "token expired"}}
    ws.send_json({"id": 2, "subscribe": {"channel": "news"}})
    assert ws.close_code() == 3501


def test_no_credentials_closes_3501(server: ServerProcess, bystander: RawWebSocket) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_json({"id": 1, "connect": {}})
    assert ws.close_code() == 3501


def test_abrupt_disconnects_do_not_leak(server: ServerProcess, bystander: RawWebSocket) -> None:
    for _ in range(20):
        ws = _connected(server)
        ws.send_json({"id": 2, "subscribe": {"channel": "news"}})
        ws.reply(2)
        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        ws.close()
    import json
    import urllib.request

    deadline = time.monotonic() + 5
    while True:
        req = urllib.request.Request(
            server.api_url + "/info", data=b"{}", headers={"X-API-Key": "test-api-key"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            node = json.load(resp)["result"]["nodes"][0]
        if node["num_clients"] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert node["num_clients"] == 1  # only the bystander
    assert node["num_subs"] == 1


def test_truncated_handshake_then_close(server: ServerProcess, bystander: RawWebSocket) -> None:
    # The bystander's teardown asserts the server still serves others afterwards.
    ws = RawWebSocket(server.host, server.port)
    ws.send_raw(b"GET /connection/websocket HTTP/1.1\r\nUpgrade: web")
    ws.close()
    assert server.alive()
