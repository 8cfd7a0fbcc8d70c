"""Server API methods acting on connections, batch, and the legacy single endpoint."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import API_KEY, SECRET, ServerProcess
from tests.wsclient import RawWebSocket


def _post(srv: ServerProcess, path: str, body: bytes) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers={"X-API-Key": API_KEY})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _api(srv: ServerProcess, method: str, body: dict[str, Any]) -> dict[str, Any]:
    status, data = _post(srv, f"/api/{method}", json.dumps(body).encode())
    assert status == 200, (status, data)
    result: dict[str, Any] = json.loads(data)
    return result


def _client(srv: ServerProcess, user: str) -> tuple[RawWebSocket, str]:
    ws = RawWebSocket(srv.host, srv.port).open()
    client_id = ws.connect(make_token(SECRET, user, 3600))["connect"]["client"]
    return ws, client_id


def test_subscribe_pushes_and_delivers(server: ServerProcess) -> None:
    ws, _ = _client(server, "sub-user")
    other, _ = _client(server, "someone")
    assert _api(
        server,
        "subscribe",
        {"user": "sub-user", "channel": "chat:srv", "data": {"hello": 1}, "info": {"r": 2}},
    ) == {"result": {}}
    assert ws.push() == {"channel": "chat:srv", "subscribe": {"data": {"hello": 1}}}
    _api(server, "publish", {"channel": "chat:srv", "data": {"n": 1}})
    assert ws.push() == {"channel": "chat:srv", "pub": {"data": {"n": 1}}}
    # The channel info given by the API shows when this connection publishes.
    other.send_json({"id": 2, "subscribe": {"channel": "chat:srv"}})
    other.reply(2)
    ws.send_json({"id": 3, "publish": {"channel": "chat:srv", "data": {"m": 1}}})
    assert ws.reply(3) == {"id": 3, "publish": {}}
    assert other.push()["pub"]["info"]["chan_info"] == {"r": 2}


def test_subscribe_errors_and_offline_user(server: ServerProcess) -> None:
    assert _api(server, "subscribe", {"user": "x", "channel": ""})["error"]["code"] == 107
    assert _api(server, "subscribe", {"user": "x", "channel": "nope:1"})["error"]["code"] == 102
    assert _api(server, "subscribe", {"user": "offline", "channel": "news"}) == {"result": {}}


def test_subscribe_only_one_client(server: ServerProcess) -> None:
    a, a_id = _client(server, "twins")
    b, _ = _client(server, "twins")
    _api(server, "subscribe", {"user": "twins", "channel": "only-a", "client": a_id})
    assert a.push() == {"channel": "only-a", "subscribe": {}}
    _api(server, "publish", {"channel": "only-a", "data": 1})
    _api(server, "subscribe", {"user": "twins", "channel": "both"})
    assert a.push() == {"channel": "only-a", "pub": {"data": 1}}
    assert b.push() == {"channel": "both", "subscribe": {}}  # b never saw only-a


def test_unsubscribe_pushes_2000(server: ServerProcess) -> None:
    ws, _ = _client(server, "unsub-user")
    ws.send_json({"id": 2, "subscribe": {"channel": "news"}})
    ws.reply(2)
    assert _api(server, "unsubscribe", {"user": "unsub-user", "channel": "news"}) == {"result": {}}
    assert ws.push() == {
        "channel": "news",
        "unsubscribe": {"code": 2000, "reason": "server unsubscribe"},
    }
    assert _api(server, "unsubscribe", {"user": "u", "channel": "nope:1"})["error"]["code"] == 102


def test_disconnect_default_custom_and_whitelist(server: ServerProcess) -> None:
    a, a_id = _client(server, "dc")
    b, _ = _client(server, "dc")
    _api(server, "disconnect", {"user": "dc", "whitelist": [a_id]})
    assert b.recv_close() == (3503, "force disconnect")
    c, _ = _client(server, "dc")
    _api(server, "disconnect", {"user": "dc", "disconnect": {"code": 4000, "reason": "custom"}})
    assert a.recv_close() == (4000, "custom")
    assert c.recv_close() == (4000, "custom")


def test_refresh_expired_and_expire_at(make_server: Any) -> None:
    srv = make_server({"client": {"expired_close_delay": "0s"}})
    a, _ = _client(srv, "r1")
    _api(srv, "refresh", {"user": "r1", "expired": True})
    assert a.close_code() == 3005
    b, _ = _client(srv, "r2")
    _api(srv, "refresh", {"user": "r2", "expire_at": int(time.time()) + 1})
    assert b.close_code() == 3005


def test_refresh_info(server: ServerProcess) -> None:
    writer, _ = _client(server, "info-user")
    reader, _ = _client(server, "reader")
    for ws in (writer, reader):
        ws.send_json({"id": 2, "subscribe": {"channel": "chat:info"}})
        ws.reply(2)
    _api(server, "refresh", {"user": "info-user", "info": {"name": "New"}})
    writer.send_json({"id": 3, "publish": {"channel": "chat:info", "data": {}}})
    writer.reply(3)
    assert reader.push()["pub"]["info"]["conn_info"] == {"name": "New"}


def test_presence_and_history_not_available_yet(server: ServerProcess) -> None:
    for method in ("presence", "presence_stats", "history", "history_remove"):
        assert _api(server, method, {"channel": "news"})["error"] == {
            "code": 108,
            "message": "not available",
        }
        assert _api(server, method, {"channel": ""})["error"]["code"] == 107
        assert _api(server, method, {"channel": "nope:x"})["error"]["code"] == 102


def test_rpc(server: ServerProcess) -> None:
    assert _api(server, "rpc", {"method": "x"})["error"] == {"code": 104, "message": "not found"}
    assert _api(server, "rpc", {})["error"]["code"] == 107


def test_batch_keeps_order_and_isolates_errors(server: ServerProcess) -> None:
    for parallel in (False, True):
        body: dict[str, Any] = {
            "commands": [
                {"publish": {"channel": "b", "data": 1}},
                {"publish": {"channel": "nope:x", "data": 1}},
                {"frobnicate": {}},
                None,
                {"publish": {"channel": 5}},
                {"info": {}},
            ],
            "parallel": parallel,
        }
        replies = _api(server, "batch", body)["replies"]
        assert replies[0] == {"publish": {}}
        assert replies[1] == {"error": {"code": 102, "message": "unknown channel"}}
        assert replies[2] == {"error": {"code": 104, "message": "not found"}}
        assert replies[3]["error"]["code"] == 107
        assert replies[4]["error"]["code"] == 107
        assert "nodes" in replies[5]["info"]
    assert _post(server, "/api/batch", b"{not json")[0] == 400


def test_legacy_endpoint(server: ServerProcess) -> None:
    body = b"\n".join(
        [
            b'{"method":"publish","params":{"channel":"legacy","data":{"x":1}}}',
            b'{"id":7,"method":"INFO","params":{}}',
            b'{"id":8,"method":9,"params":{}}',
            b'{"id":9,"method":"nope","params":{}}',
            b'{"id":10,"method":"publish","params":{"channel":"nope:x","data":1}}',
        ]
    )
    status, data = _post(server, "/api", body)
    assert status == 200
    lines = [json.loads(line) for line in data.split(b"\n")]
    assert lines[0] == {"result": {}}
    assert lines[1]["id"] == 7 and "nodes" in lines[1]["result"]
    assert lines[2]["id"] == 8 and "nodes" in lines[2]["result"]
    assert lines[3] == {"id": 9, "error": {"code": 104, "message": "not found"}}
    assert lines[4]["error"]["code"] == 102
    assert _post(server, "/api", b"")[0] == 400
    assert _post(server, "/api", b"{oops")[0] == 400
