"""Connection lifecycle: ping/pong, stale, expiry, slow consumers, graceful shutdown."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.request
from typing import Any

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import API_KEY, SECRET, ServerProcess
from tests.wsclient import RawWebSocket

FAST_PINGS = {"client": {"ping_interval": "1s", "pong_timeout": "500ms"}}


def _connected(server: ServerProcess, user: str = "u1", ttl: int | None = 3600) -> RawWebSocket:
    ws = RawWebSocket(server.host, server.port).open()
    reply = ws.connect(make_token(SECRET, user, ttl))
    assert "connect" in reply, reply
    return ws


def _publish(server: ServerProcess, channel: str, data: Any) -> None:
    req = urllib.request.Request(
        f"{server.api_url}/publish",
        data=json.dumps({"channel": channel, "data": data}).encode(),
        headers={"X-API-Key": API_KEY},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def test_pings_keep_coming_and_pongs_keep_the_connection(make_server: Any) -> None:
    srv = make_server(FAST_PINGS)
    ws = RawWebSocket(srv.host, srv.port).open()
    assert ws.connect(make_token(SECRET, "u1", 60))["connect"]["ping"] == 1
    pings = 0
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        for item in ws.recv_json():
            assert item == {}  # a ping is a reply with nothing set
            pings += 1
            ws.send_json({})  # pong
    assert pings >= 3


def test_every_connection_gets_its_first_ping_within_the_interval(make_server: Any) -> None:
    # Connections made at different times have first pings at different deadlines; one
    # ping scheduling its successor must not hold back the others' first pings.
    srv = make_server({"client": {"ping_interval": "2s", "pong_timeout": "1s"}})
    delays: dict[int, float] = {}

    def client(i: int) -> None:
        ws = _connected(srv, f"u{i}")
        connected = time.monotonic()
        ws.sock.settimeout(4.0)
        assert ws.recv_json() == [{}]
        delays[i] = time.monotonic() - connected
        ws.send_json({})

    threads = []
    for i in range(8):
        threads.append(threading.Thread(target=client, args=(i,)))
        threads[-1].start()
        time.sleep(0.2)
    for thread in threads:
        thread.join(10)
    assert len(delays) == 8
    # The first ping is due between half an interval and one interval after the connect
    # (a tick of 0.1 s late at most, plus scheduling noise).
    assert max(delays.values()) < 2.0 + 0.3, delays


def test_missing_pong_closes_3012(make_server: Any) -> None:
    srv = make_server(FAST_PINGS)
    ws = RawWebSocket(srv.host, srv.port).open()
    ws.connect(make_token(SECRET, "u1", 60))
    assert ws.recv_json() == [{}]
    started = time.monotonic()
    assert ws.close_code() == 3012
    assert time.monotonic() - started < 2.0


def test_unsolicited_pong_closes_3501(server: ServerProcess) -> None:
    ws = _connected(server)
    ws.send_json({})
    assert ws.close_code() == 3501


def test_stale_connection_closes_3502(make_server: Any) -> None:
    srv = make_server({"client": {"stale_close_delay": "500ms"}})
    ws = RawWebSocket(srv.host, srv.port).open()
    started = time.monotonic()
    assert ws.close_code() == 3502
    assert 0.4 <= time.monotonic() - started < 2.0


def test_connection_expires_with_3005_without_refresh(make_server: Any) -> None:
    srv = make_server({"client": {"expired_close_delay": "0s"}})
    ws = RawWebSocket(srv.host, srv.port).open()
    reply = ws.connect(make_token(SECRET, "u1", extra={"exp": int(time.time()) + 2}))
    assert reply["connect"]["expires"] is True
    assert ws.close_code() == 3005


def test_subscription_expires_with_unsubscribe_2501(make_server: Any) -> None:
    srv = make_server({"client": {"expired_sub_close_delay": "0s"}})
    ws = _connected(srv)
    token = make_token(SECRET, "u1", extra={"channel": "$s", "exp": int(time.time()) + 2})
    ws.send_json({"id": 2, "subscribe": {"channel": "$s", "token": token}})
    assert ws.reply(2)["subscribe"]["expires"] is True
    assert ws.push() == {
        "channel": "$s",
        "unsubscribe": {"code": 2501, "reason": "subscription expired"},
    }


def test_slow_consumer_is_disconnected_3008(make_server: Any) -> None:
    srv = make_server({"client": {"queue_max_size": 65536}})
    slow = RawWebSocket(srv.host, srv.port, rcvbuf=4096).open()
    slow.connect(make_token(SECRET, "slow", 3600))
    fast = _connected(srv, "fast")
    for ws in (slow, fast):
        ws.send_json({"id": 2, "subscribe": {"channel": "firehose"}})
        assert ws.reply(2) == {"id": 2, "subscribe": {}}
    count = 150
    received: list[int] = []

    def read_fast() -> None:
        while len(received) < count:
            received.extend(r["push"]["pub"]["data"]["n"] for r in fast.recv_json() if "push" in r)

    reader = threading.Thread(target=read_fast, daemon=True)
    reader.start()
    blob = "x" * 32000
    for n in range(count):  # ~4.8 MB: far more than the slow peer's window and queue
        _publish(srv, "firehose", {"n": n, "blob": blob})
    reader.join(10)
    # The fast subscriber got everything, in order; the slow one is cut off with 3008.
    assert received == list(range(count))
    assert slow.close_code() == 3008


def test_sigterm_closes_clients_with_3001(make_server: Any) -> None:
    srv = make_server()
    clients = [_connected(srv, f"u{i}") for i in range(3)]
    waiting = RawWebSocket(srv.host, srv.port).open()  # upgraded, not connected yet
    srv.proc.send_signal(signal.SIGTERM)
    for ws in clients:
        assert ws.recv_close() == (3001, "shutdown")
        ws.send_frame(8, b"\x0b\xb9")  # answer the close handshake
    assert waiting.close_code() == 3001
    waiting.send_frame(8, b"\x0b\xb9")
    assert srv.proc.wait(10) == 0
    assert "shutting down" in srv.output()


def test_server_answers_client_close_frame(server: ServerProcess) -> None:
    ws = _connected(server)
    ws.send_frame(8, b"\x03\xe8bye")
    assert ws.recv_close() == (1000, "")
    ws.expect_eof()


def test_websocket_ping_frame_gets_pong(server: ServerProcess) -> None:
    ws = _connected(server)
    ws.send_frame(9, b"hello")
    assert ws.recv_frame() == (10, b"hello")


def test_native_websocket_ping_mode(make_server: Any) -> None:
    srv = make_server(FAST_PINGS)
    ws = RawWebSocket(srv.host, srv.port).open("/connection/websocket?cf_ws_frame_ping_pong=true")
    result = ws.connect(make_token(SECRET, "u1", 60))["connect"]
    assert "ping" not in result and "pong" not in result
    for _ in range(3):
        assert ws.recv_frame() == (9, b"")  # a WebSocket ping, not an app-level {}
        ws.send_frame(10, b"")
    assert ws.recv_frame() == (9, b"")
    # No pong this time: the connection is closed with 3012.
    assert ws.close_code() == 3012
