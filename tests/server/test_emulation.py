"""Bidirectional emulation: HTTP-streaming and SSE streams plus `POST /emulation`
(spec/client-protocol.md §9.2-9.4), with raw HTTP clients, including bad input."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from centrifugo_fast.auth.jwt import make_token
from centrifugo_fast.protocol.codec_protobuf import decode_message, encode_delimited
from centrifugo_fast.protocol.messages import (
    Command,
    ConnectRequest,
    Reply,
    SubscribeRequest,
)
from tests.httpstream import HttpStreamClient, close_all
from tests.serverproc import (
    SECRET,
    ServerProcess,
    api_call,
    running_server,
    wait_subscribers,
)

EMULATION = {
    "http_stream": {"enabled": True},
    "sse": {"enabled": True},
    "client": {"ping_interval": "2s", "pong_timeout": "1s"},
}
STREAM_HEADERS = {
    "cache-control": "private, no-cache, no-store, must-revalidate, max-age=0",
    "pragma": "no-cache",
    "expire": "0",
    "x-accel-buffering": "no",
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    yield from running_server(EMULATION)


@pytest.fixture(autouse=True)
def _close_streams() -> Iterator[None]:
    yield
    close_all()


def _client(srv: ServerProcess, **kwargs: Any) -> HttpStreamClient:
    return HttpStreamClient(srv.host, srv.port, **kwargs)


def _emulate(
    srv: ServerProcess, session: str, node: str, data: bytes | str, **headers: str
) -> HttpStreamClient:
    body = (
        data
        if isinstance(data, bytes)
        else json.dumps({"session": session, "node": node, "data": data}).encode()
    )
    post = _client(srv)
    hdrs = {"Content-Type": "application/json", **headers}
    post.request("POST", "/emulation", body, hdrs)
    return post


def _http_stream(
    srv: ServerProcess, user: str = "alice"
) -> tuple[HttpStreamClient, dict[str, Any]]:
    stream = _client(srv)
    body = json.dumps({"id": 1, "connect": {"token": make_token(SECRET, user, 3600)}}).encode()
    status = stream.request(
        "POST", "/connection/http_stream", body, {"Content-Type": "application/json"}
    )
    assert status == 200, stream.read_body()
    reply = stream.read_json()
    assert reply["id"] == 1, reply
    return stream, reply["connect"]


def _num_clients(srv: ServerProcess) -> int:
    nodes = api_call(srv, "info", {})["result"]["nodes"]
    return int(sum(n["num_clients"] for n in nodes))


def test_http_stream_json_round_trip(server: ServerProcess) -> None:
    stream, connect = _http_stream(server)
    for name, value in STREAM_HEADERS.items():
        assert stream.headers[name] == value
    assert stream.headers["transfer-encoding"] == "chunked"
    assert connect["session"] and connect["node"]
    assert connect["ping"] == 2 and connect["pong"] is True
    subscribe = json.dumps({"id": 2, "subscribe": {"channel": "chat:emu"}})
    post = _emulate(server, connect["session"], connect["node"], subscribe)
    assert post.status == 204 and post.read_body() == b""
    assert stream.read_json() == {"id": 2, "subscribe": {}}
    api_call(server, "publish", {"channel": "chat:emu", "data": {"n": 1}})
    assert stream.read_json() == {"push": {"channel": "chat:emu", "pub": {"data": {"n": 1}}}}
    # Two commands in one emulation request, newline-joined as the SDKs batch them.
    batch = "\n".join(
        [
            json.dumps({"id": 3, "publish": {"channel": "chat:emu", "data": {"n": 2}}}),
            json.dumps({"id": 4, "unsubscribe": {"channel": "chat:emu"}}),
        ]
    )
    assert _emulate(server, connect["session"], connect["node"], batch).status == 204
    lines = [stream.read_json() for _ in range(3)]
    assert {"id": 3, "publish": {}} in lines and {"id": 4, "unsubscribe": {}} in lines


def test_pongs_through_emulation_keep_the_stream(server: ServerProcess) -> None:
    stream, connect = _http_stream(server)
    pings = 0
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        assert stream.read_json() == {}
        pings += 1
        assert _emulate(server, connect["session"], connect["node"], "{}").status == 204
        if pings == 2:
            break
    assert pings == 2


def test_no_pong_ends_the_stream_with_a_disconnect_push(server: ServerProcess) -> None:
    stream, _ = _http_stream(server)
    assert stream.read_json() == {}  # a ping, left unanswered
    assert stream.read_json() == {"push": {"disconnect": {"code": 3012, "reason": "no pong"}}}
    assert stream.expect_end() == b""


def test_api_disconnect_is_a_push_then_the_end(server: ServerProcess) -> None:
    stream, _ = _http_stream(server, "to-kick")
    api_call(server, "disconnect", {"user": "to-kick"})
    assert stream.read_json() == {
        "push": {"disconnect": {"code": 3503, "reason": "force disconnect"}}
    }
    assert stream.expect_end() == b""
    # The connection is kept alive for the next request.
    assert stream.request("GET", "/connection/http_stream") == 405


def test_http_stream_protobuf(server: ServerProcess) -> None:
    token = make_token(SECRET, "pb", 3600)
    connect = encode_delimited(Command(id=1, connect=ConnectRequest(token=token)))
    stream = _client(server)
    status = stream.request(
        "POST", "/connection/http_stream", connect, {"Content-Type": "application/octet-stream"}
    )
    assert status == 200
    assert stream.headers["content-type"] == "application/octet-stream"

    def read_reply() -> Reply:
        data = stream.read_delimited()
        reply: Reply = decode_message(data, 0, len(data), Reply)
        return reply

    reply = read_reply()
    assert reply.id == 1 and reply.connect is not None
    session, node = reply.connect.session, reply.connect.node
    assert session and node
    sub = encode_delimited(Command(id=2, subscribe=SubscribeRequest(channel="pbchan")))
    body = _protobuf_emulation_request(node, session, sub)
    post = _client(server)
    pb_type = {"Content-Type": "application/octet-stream"}
    assert post.request("POST", "/emulation", body, pb_type) == 204
    reply = read_reply()
    assert reply.id == 2 and reply.subscribe is not None
    api_call(server, "publish", {"channel": "pbchan", "data": {"n": 1}})
    reply = read_reply()
    assert reply.push is not None and reply.push.pub is not None
    assert json.loads(bytes(reply.push.pub.data)) == {"n": 1}


def _protobuf_emulation_request(node: str, session: str, data: bytes) -> bytes:
    """An EmulationRequest (node=1, session=2, data=3), not length-prefixed."""

    def field(number: int, value: bytes) -> bytes:
        length, varint = len(value), b""
        while length >= 0x80:
            varint += bytes([length & 0x7F | 0x80])
            length >>= 7
        return bytes([number << 3 | 2]) + varint + bytes([length]) + value

    return field(1, node.encode()) + field(2, session.encode()) + field(3, data)


def test_sse_get_and_post(server: ServerProcess) -> None:
    connect = json.dumps({"id": 1, "connect": {"token": make_token(SECRET, "sse", 3600)}})
    stream = _client(server)
    query = urllib.parse.urlencode({"cf_connect": connect})
    assert stream.request("GET", f"/connection/sse?{query}") == 200
    assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"
    for name, value in STREAM_HEADERS.items():
        assert stream.headers[name] == value
    assert stream.read_until(b"\n") == b"\n"
    result = stream.read_event()["connect"]
    sub = json.dumps({"id": 2, "subscribe": {"channel": "ssechan"}})
    assert _emulate(server, result["session"], result["node"], sub).status == 204
    assert stream.read_event() == {"id": 2, "subscribe": {}}
    api_call(server, "publish", {"channel": "ssechan", "data": {"line1": "a\nb"}})
    assert stream.read_event() == {
        "push": {"channel": "ssechan", "pub": {"data": {"line1": "a\nb"}}}
    }

    post = _client(server)
    body = connect.encode()
    assert (
        post.request("POST", "/connection/sse", body, {"Content-Type": "application/json"}) == 200
    )
    assert "connect" in post.read_event()


def test_emulation_bad_input(server: ServerProcess) -> None:
    _, connect = _http_stream(server, "bad-input")
    session, node = connect["session"], connect["node"]
    client = _client(server)
    assert client.request("GET", "/emulation") == 405
    assert "POST" in client.headers["allow"]
    client.read_body()
    # Undecodable body.
    assert (
        client.request("POST", "/emulation", b"{not json", {"Content-Type": "application/json"})
        == 400
    )
    client.read_body()
    assert (
        client.request(
            "POST", "/emulation", b"\xff\xff", {"Content-Type": "application/octet-stream"}
        )
        == 400
    )
    client.read_body()
    # Another (unknown) node: 404, as the SDK expects for a node that is gone.
    assert _emulate(server, session, "some-other-node", "{}").status == 404
    # Unknown or expired session on this node: accepted and dropped.
    assert _emulate(server, "no-such-session", node, '{"id":5,"ping":{}}').status == 204
    # Oversized body: 413 before it is read.
    big = json.dumps({"session": session, "node": node, "data": "x" * 70000}).encode()
    assert _emulate(server, session, node, big).status == 413


def test_preflight_and_methods(server: ServerProcess) -> None:
    for path, methods in (
        ("/emulation", "POST, OPTIONS"),
        ("/connection/http_stream", "POST, OPTIONS"),
        ("/connection/sse", "GET, POST, OPTIONS"),
    ):
        client = _client(server)
        status = client.request(
            "OPTIONS", path, headers={"Access-Control-Request-Headers": "content-type"}
        )
        assert status == 204, path
        assert client.headers["access-control-max-age"] == "300"
        assert client.headers["access-control-allow-methods"] == methods
        assert client.headers["access-control-allow-headers"] == "content-type"
        assert "content-length" not in client.headers
    client = _client(server)
    assert client.request("GET", "/connection/http_stream") == 405
    client.read_body()
    assert client.request("PUT", "/connection/sse", b"x") == 405


def test_connect_bad_input(server: ServerProcess) -> None:
    json_type = {"Content-Type": "application/json"}
    cases: list[tuple[str, str, bytes, int]] = [
        ("POST", "/connection/http_stream", b"{garbage", 400),
        ("POST", "/connection/http_stream", b'{"id":1,"subscribe":{"channel":"x"}}', 400),
        ("POST", "/connection/http_stream", b"", 400),
        ("POST", "/connection/http_stream", b'{"id":1,"connect":{}}' + b" " * 70000, 413),
        ("GET", "/connection/sse", b"", 400),
        ("GET", "/connection/sse?cf_connect=%7Bnot-json", b"", 400),
        ("GET", "/connection/sse?cf_connect=", b"", 400),
    ]
    for method, path, body, expected in cases:
        client = _client(server)
        assert client.request(method, path, body, json_type) == expected, (method, path, body[:40])


def test_bad_command_on_the_stream_is_3501(server: ServerProcess) -> None:
    stream, connect = _http_stream(server)
    assert _emulate(server, connect["session"], connect["node"], "not json").status == 204
    assert stream.read_json() == {"push": {"disconnect": {"code": 3501, "reason": "bad request"}}}
    assert stream.expect_end() == b""


def test_origin_policy(make_server: Any) -> None:
    srv = make_server({**EMULATION, "client": {"allowed_origins": ["https://good.example"]}})
    body = json.dumps({"id": 1, "connect": {"token": make_token(SECRET, "o", 3600)}}).encode()
    bad = _client(srv)
    headers = {"Content-Type": "application/json", "Origin": "https://evil.example"}
    assert bad.request("POST", "/connection/http_stream", body, headers) == 403
    good = _client(srv)
    headers["Origin"] = "https://good.example"
    assert good.request("POST", "/connection/http_stream", body, headers) == 200
    assert good.headers["access-control-allow-origin"] == "https://good.example"
    assert good.headers["access-control-allow-credentials"] == "true"
    preflight = _client(srv)
    assert (
        preflight.request("OPTIONS", "/emulation", headers={"Origin": "https://evil.example"})
        == 403
    )


def test_slow_reader_is_cut_and_freed(make_server: Any) -> None:
    srv = make_server({**EMULATION, "client": {"queue_max_size": 65536}})
    slow = HttpStreamClient(srv.host, srv.port, rcvbuf=4096)
    body = json.dumps({"id": 1, "connect": {"token": make_token(SECRET, "slow", 3600)}}).encode()
    assert slow.request("POST", "/connection/http_stream", body) == 200
    connect = slow.read_json()["connect"]
    sub = json.dumps({"id": 2, "subscribe": {"channel": "firehose"}})
    assert _emulate(srv, connect["session"], connect["node"], sub).status == 204
    wait_subscribers(srv, "firehose")
    blob = "x" * 32000
    stop = threading.Event()

    def publish() -> None:
        for n in range(200):
            if stop.is_set():
                return
            api_call(srv, "publish", {"channel": "firehose", "data": {"n": n, "blob": blob}})

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    deadline = time.monotonic() + 10
    while _num_clients(srv) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    publisher.join(10)
    assert _num_clients(srv) == 0
    assert "slow" not in json.dumps(api_call(srv, "channels", {}))  # the subscription is gone
    slow.expect_closed()


def test_graceful_shutdown_ends_streams_with_3001(make_server: Any) -> None:
    srv = make_server({**EMULATION, "uni_http_stream": {"enabled": True}})
    stream, _ = _http_stream(srv, "bye")
    uni = _client(srv)
    body = json.dumps({"token": make_token(SECRET, "bye-uni", 3600)}).encode()
    assert uni.request("POST", "/connection/uni_http_stream", body) == 200
    assert "connect" in uni.read_json()
    started = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert stream.read_json() == {"push": {"disconnect": {"code": 3001, "reason": "shutdown"}}}
    assert stream.expect_end() == b""
    assert uni.read_json() == {"disconnect": {"code": 3001, "reason": "shutdown"}}
    assert uni.expect_end() == b""
    # Wait for the exit the first SIGTERM started (stop() would signal a second time, and a
    # second SIGTERM during interpreter teardown rightly kills the process).
    assert srv.proc.wait(10) == 0
    assert time.monotonic() - started < 3
