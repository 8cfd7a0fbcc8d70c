"""The WebSocket opening handshake against a real server process."""

from __future__ import annotations

import base64
import hashlib

from tests.serverproc import ServerProcess
from tests.wsclient import RawWebSocket


def _ws(server: ServerProcess) -> RawWebSocket:
    return RawWebSocket(server.host, server.port)


def test_accept_key_and_upgrade_headers(server: ServerProcess) -> None:
    ws = _ws(server)
    key = base64.b64encode(b"0123456789abcdef").decode()
    status, headers, _ = ws.handshake(headers={"Sec-WebSocket-Key": key})
    expected = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
    ).decode()
    assert status == 101
    assert headers["sec-websocket-accept"] == expected
    assert headers["upgrade"].lower() == "websocket"
    assert "sec-websocket-protocol" not in headers
    ws.close()


def test_json_subprotocol_is_echoed(server: ServerProcess) -> None:
    ws = _ws(server)
    status, headers, _ = ws.handshake(headers={"Sec-WebSocket-Protocol": "centrifuge-json"})
    assert status == 101
    assert headers["sec-websocket-protocol"] == "centrifuge-json"
    ws.close()


def test_unknown_subprotocol_is_not_echoed(server: ServerProcess) -> None:
    ws = _ws(server)
    status, headers, _ = ws.handshake(headers={"Sec-WebSocket-Protocol": "mqtt"})
    assert status == 101
    assert "sec-websocket-protocol" not in headers
    ws.close()


def test_protobuf_subprotocol_is_echoed(server: ServerProcess) -> None:
    ws = _ws(server)
    status, headers, _ = ws.handshake(
        headers={"Sec-WebSocket-Protocol": "centrifuge-json, centrifuge-protobuf"}
    )
    assert status == 101
    # Our preference order decides between offers: JSON first, as listed by the server.
    assert headers["sec-websocket-protocol"] == "centrifuge-json"
    ws.close()


def test_non_upgrade_request_to_websocket_endpoint_is_400(server: ServerProcess) -> None:
    ws = _ws(server)
    ws.send_raw(b"GET /connection/websocket HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = ws.read_http_response()
    assert status == 400
    ws.close()


def test_non_get_upgrade_is_405(server: ServerProcess) -> None:
    ws = _ws(server)
    status, headers, _ = ws.handshake(method="POST", headers={"Content-Length": "0"})
    assert status == 405
    ws.close()


def test_wrong_version_is_400_with_supported_version(server: ServerProcess) -> None:
    ws = _ws(server)
    status, headers, _ = ws.handshake(headers={"Sec-WebSocket-Version": "8"})
    assert status == 400
    assert headers["sec-websocket-version"] == "13"
    ws.close()


def test_missing_or_bad_key_is_400(server: ServerProcess) -> None:
    for key in (None, "short", "!!!notbase64!!!"):
        ws = _ws(server)
        status, _, _ = ws.handshake(headers={"Sec-WebSocket-Key": key})  # type: ignore[dict-item]
        assert status == 400, key
        ws.close()


def test_browser_origin_refused_by_default(server: ServerProcess) -> None:
    ws = _ws(server)
    status, _, _ = ws.handshake(headers={"Origin": "https://evil.example"})
    assert status == 403
    ws.close()


def test_allowed_origin_glob(make_server: object) -> None:
    srv = make_server({"client": {"allowed_origins": ["https://*.example.com"]}})  # type: ignore[operator]
    ok = RawWebSocket(srv.host, srv.port)
    assert ok.handshake(headers={"Origin": "https://app.example.com"})[0] == 101
    ok.close()
    bad = RawWebSocket(srv.host, srv.port)
    assert bad.handshake(headers={"Origin": "https://example.org"})[0] == 403
    bad.close()


def test_unknown_path_is_404(server: ServerProcess) -> None:
    ws = _ws(server)
    status, _, _ = ws.handshake(path="/nope")
    assert status == 404
    ws.close()
