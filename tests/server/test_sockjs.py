"""SockJS at /connection/sockjs with raw clients: info, the HTTP receiving kinds (xhr polling,
xhr_streaming, eventsource), xhr_send, the WebSocket kind, close frames and bad input."""

from __future__ import annotations

import json
import time
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

PREFIX = "/connection/sockjs"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    yield from running_server({"sockjs": {"enabled": True}})


@pytest.fixture(autouse=True)
def _close_streams() -> Iterator[None]:
    yield
    close_all()


def _connect_message(user: str) -> str:
    return json.dumps({"id": 1, "connect": {"token": make_token(SECRET, user, 3600)}})


def _messages(frame: bytes) -> list[dict[str, Any]]:
    """The Centrifugo replies inside one SockJS `a[...]` frame."""
    assert frame.startswith(b"a["), frame
    return [json.loads(line) for m in json.loads(frame[1:]) for line in m.split("\n")]


def _send(srv: ServerProcess, sid: str, *messages: str) -> int:
    client = HttpStreamClient(srv.host, srv.port)
    body = json.dumps(list(messages)).encode()
    status = client.request(
        "POST", f"{PREFIX}/0/{sid}/xhr_send", body, {"Content-type": "text/plain"}
    )
    client.read_body()
    return status


def _poll(srv: ServerProcess, sid: str) -> bytes:
    client = HttpStreamClient(srv.host, srv.port)
    assert client.request("POST", f"{PREFIX}/0/{sid}/xhr") == 200
    assert client.headers["content-type"] == "application/javascript; charset=UTF-8"
    return client.read_body()


def test_info_and_welcome(server: ServerProcess) -> None:
    client = HttpStreamClient(server.host, server.port)
    assert client.request("GET", f"{PREFIX}/info") == 200
    info = json.loads(client.read_body())
    assert info["websocket"] is True and info["cookie_needed"] is False
    assert info["origins"] == ["*:*"] and isinstance(info["entropy"], int)
    assert "no-store" in client.headers["cache-control"]
    assert client.request("OPTIONS", f"{PREFIX}/info") == 204
    assert client.headers["access-control-allow-methods"] == "OPTIONS, GET"
    assert client.request("GET", PREFIX) == 200
    assert client.read_body() == b"Welcome to SockJS!\n"


def test_xhr_polling_session(server: ServerProcess) -> None:
    sid = "poll1"
    assert _poll(server, sid) == b"o\n"
    assert _send(server, sid, _connect_message("p1")) == 204
    (reply,) = _messages(_poll(server, sid).rstrip(b"\n"))
    assert reply["id"] == 1 and "client" in reply["connect"]
    subscribe = json.dumps({"id": 2, "subscribe": {"channel": "sockjs-poll"}})
    assert _send(server, sid, subscribe) == 204
    assert _messages(_poll(server, sid).rstrip(b"\n")) == [{"id": 2, "subscribe": {}}]
    # A publication while no poll is open waits in the session.
    api_call(server, "publish", {"channel": "sockjs-poll", "data": {"text": "100% ok"}})
    time.sleep(0.1)
    frames = _poll(server, sid)
    assert _messages(frames.rstrip(b"\n")) == [
        {"push": {"channel": "sockjs-poll", "pub": {"data": {"text": "100% ok"}}}}
    ]
    # A server disconnect while no poll is open: the next poll gets the close frame.
    api_call(server, "disconnect", {"user": "p1"})
    time.sleep(0.1)
    assert _poll(server, sid) == b'c[3503,"force disconnect"]\n'
    assert _poll(server, sid) == b'c[3503,"force disconnect"]\n'
    assert _send(server, sid, "{}") == 404


def test_xhr_streaming_and_another_connection(server: ServerProcess) -> None:
    sid = "stream1"
    stream = HttpStreamClient(server.host, server.port)
    assert stream.request("POST", f"{PREFIX}/0/{sid}/xhr_streaming") == 200
    assert stream.read_line() == b"h" * 2048
    assert stream.read_line() == b"o"
    second = HttpStreamClient(server.host, server.port)
    assert second.request("POST", f"{PREFIX}/0/{sid}/xhr_streaming") == 200
    assert second.read_body() == b"h" * 2048 + b'\nc[2010,"Another connection still open"]\n'
    assert _send(server, sid, _connect_message("s1")) == 204
    assert "connect" in _messages(stream.read_line())[0]
    subscribe = json.dumps({"id": 2, "subscribe": {"channel": "sockjs-stream"}})
    assert _send(server, sid, subscribe) == 204
    assert _messages(stream.read_line()) == [{"id": 2, "subscribe": {}}]
    api_call(server, "publish", {"channel": "sockjs-stream", "data": {"n": 1}})
    assert _messages(stream.read_line()) == [
        {"push": {"channel": "sockjs-stream", "pub": {"data": {"n": 1}}}}
    ]
    api_call(server, "disconnect", {"user": "s1"})
    assert stream.read_line() == b'c[3503,"force disconnect"]'
    assert stream.expect_end() == b""


def test_eventsource(server: ServerProcess) -> None:
    sid = "es1"
    stream = HttpStreamClient(server.host, server.port)
    assert stream.request("GET", f"{PREFIX}/0/{sid}/eventsource") == 200
    assert stream.headers["content-type"] == "text/event-stream; charset=UTF-8"
    assert stream.read_until(b"\r\n") == b"\r\n"
    assert stream.read_until(b"\r\n\r\n") == b"data: o\r\n\r\n"
    assert _send(server, sid, _connect_message("e1")) == 204
    event = stream.read_until(b"\r\n\r\n")
    assert event.startswith(b"data: a[") and b"connect" in event
    subscribe = json.dumps({"id": 2, "subscribe": {"channel": "sockjs-es"}})
    assert _send(server, sid, subscribe) == 204
    stream.read_until(b"\r\n\r\n")
    api_call(server, "publish", {"channel": "sockjs-es", "data": {"p": "50%"}})
    event = stream.read_until(b"\r\n\r\n")
    # sockjs-client runs decodeURI on every event: a literal % travels as %25.
    assert b"50%25" in event and b'50%"' not in event


def test_websocket_kind(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open(f"{PREFIX}/123/wsabc/websocket")
    assert ws.recv_frame() == (1, b"o")
    ws.send_frame(1, json.dumps([_connect_message("w1")]).encode())
    opcode, frame = ws.recv_frame()
    assert opcode == 1 and "connect" in _messages(frame)[0]
    ws.send_frame(
        1, json.dumps(json.dumps({"id": 2, "subscribe": {"channel": "sockjs-ws"}})).encode()
    )
    assert _messages(ws.recv_frame()[1]) == [{"id": 2, "subscribe": {}}]
    wait_subscribers(server, "sockjs-ws")
    api_call(server, "publish", {"channel": "sockjs-ws", "data": "x"})
    assert _messages(ws.recv_frame()[1]) == [
        {"push": {"channel": "sockjs-ws", "pub": {"data": "x"}}}
    ]
    api_call(server, "disconnect", {"user": "w1"})
    assert ws.recv_frame() == (1, b'c[3503,"force disconnect"]')
    assert ws.recv_close() == (3503, "force disconnect")

    broken = RawWebSocket(server.host, server.port).open(f"{PREFIX}/123/wsdef/websocket")
    assert broken.recv_frame() == (1, b"o")
    broken.send_frame(1, b"[not json")
    assert broken.recv_frame() == (1, b'c[3501,"bad request"]')


def test_bad_input(server: ServerProcess) -> None:
    cases: list[tuple[str, str, bytes, int]] = [
        ("POST", f"{PREFIX}/0/nosuch/xhr_send", b'["{}"]', 404),
        ("GET", f"{PREFIX}/0/sid/xhr", b"", 405),
        ("POST", f"{PREFIX}/0/sid/eventsource", b"", 405),
        ("GET", f"{PREFIX}/0/a.b/xhr", b"", 404),
        ("POST", f"{PREFIX}/0/sid/unknown", b"", 404),
        ("GET", f"{PREFIX}/only/two", b"", 404),
        ("GET", f"{PREFIX}/0/sid/websocket", b"", 400),
        ("POST", f"{PREFIX}/0/sid/xhr_send", b"x" * 70000, 413),
    ]
    for method, path, body, status in cases:
        client = HttpStreamClient(server.host, server.port)
        assert client.request(method, path, body) == status, (method, path)
    sid = "badsend"
    assert _poll(server, sid) == b"o\n"
    client = HttpStreamClient(server.host, server.port)
    assert client.request("POST", f"{PREFIX}/0/{sid}/xhr_send", b"") == 500
    assert client.read_body() == b"Payload expected.\n"
    assert client.request("POST", f"{PREFIX}/0/{sid}/xhr_send", b"[broken") == 500
    assert client.read_body() == b"Broken JSON encoding.\n"
    ws = RawWebSocket(server.host, server.port)
    status, _, _ = ws.handshake(f"{PREFIX}/info")
    assert status == 404
