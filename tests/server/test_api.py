"""The HTTP server API: auth, shapes, errors, limits (spec/server-api.md §1)."""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import API_KEY, SECRET, ServerProcess
from tests.wsclient import RawWebSocket


def _request(
    server: ServerProcess,
    path: str,
    body: bytes | str = b"{}",
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        hdrs = {"X-API-Key": API_KEY} if headers is None else headers
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _call(server: ServerProcess, method: str, body: dict[str, Any]) -> dict[str, Any]:
    status, data = _request(server, f"/api/{method}", json.dumps(body))
    assert status == 200, (status, data)
    result: dict[str, Any] = json.loads(data)
    return result


def test_auth_variants(server: ServerProcess) -> None:
    assert _request(server, "/api/info", headers={})[0] == 401
    assert _request(server, "/api/info", headers={"X-API-Key": "wrong"})[0] == 401
    assert _request(server, "/api/info", headers={"Authorization": f"apikey {API_KEY}"})[0] == 200
    assert _request(server, "/api/info", headers={"Authorization": f"ApiKey {API_KEY}"})[0] == 200
    assert _request(server, "/api/info", headers={"Authorization": f"Bearer {API_KEY}"})[0] == 401
    assert _request(server, f"/api/info?api_key={API_KEY}", headers={})[0] == 200
    status, body = _request(server, "/api/info", headers={})
    assert body == b""


def test_empty_key_refuses_everything(make_server: Any) -> None:
    srv = make_server({"http_api": {"key": ""}})
    assert _request(srv, "/api/info", headers={"X-API-Key": ""})[0] == 401


def test_insecure_api(make_server: Any) -> None:
    srv = make_server({"http_api": {"insecure": True}})
    assert _request(srv, "/api/info", headers={})[0] == 200


def test_only_post(server: ServerProcess) -> None:
    assert _request(server, "/api/info", method="GET", body=b"")[0] == 405


def test_malformed_json_is_400(server: ServerProcess) -> None:
    assert _request(server, "/api/publish", "{not json")[0] == 400
    assert _request(server, "/api/publish", '{"channel": 5}')[0] == 400
    assert _request(server, "/api/info", "")[0] == 400


def test_unknown_method_is_404(server: ServerProcess) -> None:
    assert _request(server, "/api/frobnicate")[0] == 404


def test_info_shape(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.connect(make_token(SECRET, "42", 60))
    ws.send_json({"id": 2, "subscribe": {"channel": "news"}})
    ws.reply(2)
    nodes = _call(server, "info", {})["result"]["nodes"]
    assert len(nodes) == 1
    node = nodes[0]
    assert set(node) >= {"uid", "name", "version", "num_clients", "num_users", "num_channels"}
    assert node["num_clients"] >= 1 and node["num_subs"] >= 1 and node["num_channels"] >= 1
    assert node["name"].endswith(f"_{server.port}")


def test_publish_results_and_errors(server: ServerProcess) -> None:
    assert _call(server, "publish", {"channel": "news", "data": {"x": 1}}) == {"result": {}}
    assert _call(server, "publish", {"channel": "", "data": {}}) == {
        "error": {"code": 107, "message": "bad request"}
    }
    assert _call(server, "publish", {"channel": "nope:x", "data": {}}) == {
        "error": {"code": 102, "message": "unknown channel"}
    }
    assert _call(server, "publish", {"channel": "news"})["error"]["code"] == 107
    assert _call(server, "publish", {"channel": "news", "b64data": "!!"})["error"]["code"] == 107


def test_transport_error_mode(server: ServerProcess) -> None:
    status, body = _request(
        server,
        "/api/publish",
        '{"channel":"nope:x","data":{}}',
        headers={"X-API-Key": API_KEY, "X-Centrifugo-Error-Mode": "transport"},
    )
    assert status == 404
    assert json.loads(body) == {"code": 102, "message": "unknown channel"}


def test_broadcast(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.connect(make_token(SECRET, "42", 60))
    ws.send_json({"id": 2, "subscribe": {"channel": "b2"}})
    ws.reply(2)
    result = _call(
        server, "broadcast", {"channels": ["b1", "nope:x", "b2", ""], "data": {"hi": True}}
    )
    assert result == {
        "result": {
            "responses": [
                {"result": {}},
                {"error": {"code": 102, "message": "unknown channel"}},
                {"result": {}},
                {"error": {"code": 107, "message": "bad request"}},
            ]
        }
    }
    assert ws.push() == {"channel": "b2", "pub": {"data": {"hi": True}}}
    assert _call(server, "broadcast", {"channels": [], "data": {}})["error"]["code"] == 107


def test_binary_payload_reaches_json_client_only_if_json(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.connect(make_token(SECRET, "42", 60))
    ws.send_json({"id": 2, "subscribe": {"channel": "bin"}})
    ws.reply(2)
    ok = base64.b64encode(b'{"k":"v"}').decode()
    assert _call(server, "publish", {"channel": "bin", "b64data": ok}) == {"result": {}}
    assert ws.push() == {"channel": "bin", "pub": {"data": {"k": "v"}}}
    garbage = base64.b64encode(b"\x00\x01\x02").decode()
    assert _call(server, "publish", {"channel": "bin", "b64data": garbage}) == {"result": {}}
    # JSON clients cannot receive non-JSON bytes: 3506 inappropriate protocol.
    assert ws.close_code() == 3506


def test_channels(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.connect(make_token(SECRET, "42", 60))
    for i, ch in enumerate(("chat:1", "chat:2", "misc"), start=2):
        ws.send_json({"id": i, "subscribe": {"channel": ch}})
        ws.reply(i)
    all_channels = _call(server, "channels", {})["result"]["channels"]
    assert all_channels["chat:1"] == {"num_clients": 1}
    assert set(_call(server, "channels", {"pattern": "chat:*"})["result"]["channels"]) == {
        "chat:1",
        "chat:2",
    }


def test_keep_alive_and_pipelining(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port)
    req = (
        f"POST /api/info HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
        "Content-Length: 2\r\n\r\n{}"
    )
    ws.send_raw((req + req + req).encode())
    for _ in range(3):
        status, _, body = ws.read_http_response()
        assert status == 200 and b'"nodes"' in body


def test_oversized_body_is_413(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port)
    ws.send_raw(
        f"POST /api/publish HTTP/1.1\r\nX-API-Key: {API_KEY}\r\n"
        f"Content-Length: {64 * 1024 * 1024}\r\n\r\n".encode()
    )
    assert ws.read_http_response()[0] == 413
    ws.expect_eof()


def test_oversized_headers_are_431(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port)
    ws.send_raw(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
    assert ws.read_http_response()[0] == 431
