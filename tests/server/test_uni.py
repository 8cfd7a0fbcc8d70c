"""Unidirectional transports (spec/client-protocol.md §9.6): uni_http_stream and uni_sse with a
streaming HTTP client, uni_websocket with a raw WebSocket client; bare pushes, pings as `{}`,
connect errors as disconnect pushes, and bad input."""

from __future__ import annotations

import json
import struct
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from centrifugo_fast.auth.jwt import make_token
from tests.httpstream import HttpStreamClient, close_all
from tests.serverproc import (
    SECRET,
    ServerProcess,
    api_call,
    running_server,
    wait_subscribers,
)
from tests.wsclient import RawWebSocket

UNI = {
    "uni_http_stream": {"enabled": True},
    "uni_sse": {"enabled": True},
    "uni_websocket": {"enabled": True},
    "client": {
        "ping_interval": "2s",
        "pong_timeout": "1s",
        "allow_anonymous_connect_without_token": True,
    },
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    yield from running_server(UNI)


@pytest.fixture(autouse=True)
def _close_streams() -> Iterator[None]:
    yield
    close_all()


def _token(user: str, channels: list[str] | None = None, ttl: int = 3600) -> str:
    return make_token(SECRET, user, ttl, {"channels": channels} if channels else None)


def _uni_http_stream(srv: ServerProcess, request: dict[str, Any]) -> HttpStreamClient:
    client = HttpStreamClient(srv.host, srv.port)
    body = json.dumps(request).encode()
    assert client.request("POST", "/connection/uni_http_stream", body) == 200
    assert client.headers["x-accel-buffering"] == "no"
    return client


def test_uni_http_stream_session(server: ServerProcess) -> None:
    stream = _uni_http_stream(server, {"token": _token("u1", ["uninews"])})
    connect = stream.read_json()["connect"]
    assert connect["subs"] == {"uninews": {}}
    assert connect["ping"] == 2 and "pong" not in connect
    assert connect["session"] and "node" not in connect
    wait_subscribers(server, "uninews")
    api_call(server, "publish", {"channel": "uninews", "data": {"msg": "hi"}})
    assert stream.read_json() == {"channel": "uninews", "pub": {"data": {"msg": "hi"}}}
    # Server-side subscribe through the API: a subscribe push, then its publications.
    api_call(server, "subscribe", {"user": "u1", "channel": "extra"})
    assert stream.read_json() == {"channel": "extra", "subscribe": {}}
    api_call(server, "publish", {"channel": "extra", "data": [1, 2]})
    assert stream.read_json() == {"channel": "extra", "pub": {"data": [1, 2]}}
    # Pings are empty pushes; no pong is expected, so the stream stays up past pong_timeout.
    assert stream.read_json() == {}
    assert stream.read_json() == {}  # 2 s later: still connected
    api_call(server, "disconnect", {"user": "u1"})
    while (push := stream.read_json()) == {}:
        pass
    assert push == {"disconnect": {"code": 3503, "reason": "force disconnect"}}
    assert stream.expect_end() == b""


@pytest.mark.parametrize(
    ("request_body", "code", "reason"),
    [
        ({"token": make_token(SECRET, "old", extra={"exp": 1000})}, 3005, "connection expired"),
        (
            {"token": make_token("wrong-secret-0123456789abcdef0123456789", "x", 60)},
            3500,
            "invalid token",
        ),
    ],
)
def test_uni_connect_errors_are_disconnect_pushes(
    server: ServerProcess, request_body: dict[str, Any], code: int, reason: str
) -> None:
    stream = _uni_http_stream(server, request_body)
    assert stream.read_json() == {"disconnect": {"code": code, "reason": reason}}
    assert stream.expect_end() == b""


def test_uni_http_stream_bad_input(server: ServerProcess) -> None:
    cases: list[tuple[str, bytes, int]] = [
        ("GET", b"", 405),
        ("POST", b"{not json", 400),
        ("POST", b'{"token": 5}', 400),
        ("POST", b"[]", 400),
        ("POST", b'{"token":"' + b"x" * 70000 + b'"}', 413),
    ]
    for method, body, status in cases:
        client = HttpStreamClient(server.host, server.port)
        assert client.request(method, "/connection/uni_http_stream", body) == status, body[:30]
    client = HttpStreamClient(server.host, server.port)
    assert client.request("OPTIONS", "/connection/uni_http_stream") == 204
    assert client.headers["access-control-max-age"] == "300"


def test_uni_sse_get_post_and_anonymous(server: ServerProcess) -> None:
    query = urllib.parse.urlencode({"cf_connect": json.dumps({"token": _token("s1", ["unisse"])})})
    stream = HttpStreamClient(server.host, server.port)
    assert stream.request("GET", f"/connection/uni_sse?{query}") == 200
    assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert stream.read_until(b"\n") == b"\n"
    assert stream.read_event()["connect"]["subs"] == {"unisse": {}}
    wait_subscribers(server, "unisse")
    api_call(server, "publish", {"channel": "unisse", "data": {"k": "v"}})
    assert stream.read_event() == {"channel": "unisse", "pub": {"data": {"k": "v"}}}

    post = HttpStreamClient(server.host, server.port)
    body = json.dumps({"token": _token("s2")}).encode()
    assert post.request("POST", "/connection/uni_sse", body) == 200
    assert "client" in post.read_event()["connect"]

    anonymous = HttpStreamClient(server.host, server.port)
    assert anonymous.request("GET", "/connection/uni_sse") == 200  # no cf_connect: empty request
    assert "client" in anonymous.read_event()["connect"]

    bad = HttpStreamClient(server.host, server.port)
    assert bad.request("GET", "/connection/uni_sse?cf_connect=%7Bbroken") == 400
    put = HttpStreamClient(server.host, server.port)
    assert put.request("PUT", "/connection/uni_sse", b"{}") == 405


def _ws_json(ws: RawWebSocket) -> dict[str, Any]:
    """The next push (a text frame) other than a ping, answering WebSocket pings on the way."""
    while True:
        opcode, payload = ws.recv_frame()
        if opcode == 9:
            ws.send_frame(10, payload)
            continue
        if payload == b"{}":
            continue
        assert opcode == 1, (opcode, payload)
        value: dict[str, Any] = json.loads(payload)
        return value


def test_uni_websocket_cf_connect_query(server: ServerProcess) -> None:
    query = urllib.parse.urlencode({"cf_connect": json.dumps({"token": _token("w1", ["uniws"])})})
    ws = RawWebSocket(server.host, server.port).open(f"/connection/uni_websocket?{query}")
    connect = _ws_json(ws)["connect"]
    assert connect["subs"] == {"uniws": {}} and connect["ping"] == 2
    wait_subscribers(server, "uniws")
    api_call(server, "publish", {"channel": "uniws", "data": {"a": 1}})
    assert _ws_json(ws) == {"channel": "uniws", "pub": {"data": {"a": 1}}}
    # Both kinds of keep-alive: a WebSocket ping frame and an empty push.
    seen_ping_frame = seen_empty_push = False
    deadline = time.monotonic() + 5
    while not (seen_ping_frame and seen_empty_push) and time.monotonic() < deadline:
        opcode, payload = ws.recv_frame()
        if opcode == 9:
            seen_ping_frame = True
            ws.send_frame(10, payload)
        elif opcode == 1 and payload == b"{}":
            seen_empty_push = True
    assert seen_ping_frame and seen_empty_push
    api_call(server, "disconnect", {"user": "w1"})
    assert _ws_json(ws) == {"disconnect": {"code": 3503, "reason": "force disconnect"}}
    assert ws.recv_close() == (3503, "force disconnect")


def test_uni_websocket_first_message(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open("/connection/uni_websocket")
    ws.send_frame(1, json.dumps({"token": _token("w2")}).encode())
    assert "client" in _ws_json(ws)["connect"]
    ws.send_frame(1, b"ignored: no commands on a unidirectional connection")
    api_call(server, "publish", {"channel": "#w2", "data": {}})  # no subscription: nothing comes

    anonymous = RawWebSocket(server.host, server.port).open("/connection/uni_websocket")
    anonymous.send_frame(1, b"null")
    assert "client" in _ws_json(anonymous)["connect"]


def test_uni_websocket_bad_input(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open("/connection/uni_websocket")
    ws.send_frame(1, b"{broken")
    assert _ws_json(ws) == {"disconnect": {"code": 3501, "reason": "bad request"}}
    assert ws.recv_close() == (3501, "bad request")

    query = urllib.parse.quote("{broken")
    bad_query = RawWebSocket(server.host, server.port).open(
        f"/connection/uni_websocket?cf_connect={query}"
    )
    assert _ws_json(bad_query)["disconnect"]["code"] == 3501

    expired = make_token(SECRET, "old", extra={"exp": 1000})
    query = urllib.parse.urlencode({"cf_connect": json.dumps({"token": expired})})
    old = RawWebSocket(server.host, server.port).open(f"/connection/uni_websocket?{query}")
    assert _ws_json(old) == {"disconnect": {"code": 3005, "reason": "connection expired"}}
    code, _ = old.recv_close()
    assert code == 3005

    plain = RawWebSocket(server.host, server.port)
    plain.send_raw(b"GET /connection/uni_websocket HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, _ = plain.read_http_response()
    assert status == 400


def test_uni_websocket_no_pong_is_3012(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open("/connection/uni_websocket")
    ws.send_frame(1, b"{}")
    while True:
        opcode, payload = ws.recv_frame()
        if opcode == 8:
            assert struct.unpack("!H", payload[:2])[0] == 3012
            return
        if opcode == 1 and json.loads(payload).get("disconnect"):
            assert json.loads(payload)["disconnect"]["code"] == 3012
