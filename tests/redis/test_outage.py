"""Redis goes away and comes back (done-when (d)): fast errors, clients stay, recovery works."""

from __future__ import annotations

import signal
import time
import urllib.error
from collections.abc import Callable
from typing import Any

import pytest

from tests.redis.helpers import Client, api, redis_config, start_servers, wait_for
from tests.redis.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.wsclient import close_all

pytestmark = pytest.mark.slow

IO_TIMEOUT = 0.5


def _publish(srv: ServerProcess, channel: str, data: Any) -> dict[str, Any]:
    result: dict[str, Any] = api(srv, "publish", {"channel": channel, "data": data})
    return result


def _timed_publish(srv: ServerProcess, channel: str) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    result = _publish(srv, channel, {"during": "outage"})
    return result, time.monotonic() - started


def test_outage_and_recovery(make_redis: Callable[..., RedisProcess]) -> None:
    redis = make_redis("--appendonly", "yes", "--appendfsync", "always")
    config = redis_config(
        {
            "address": [redis.address],
            "prefix": "out",
            "io_timeout": "500ms",
            "connect_timeout": "500ms",
        }
    )
    (srv,) = start_servers(config, 1)
    try:
        sub = Client(srv, "watcher")
        first = sub.subscribe("rec:o")
        epoch = first["epoch"]
        for i in range(3):
            assert _publish(srv, "rec:o", {"i": i})["result"]["offset"] == i + 1
        assert [p["offset"] for p in sub.pubs(3)] == [1, 2, 3]

        # A hung Redis: the API answers 100 within io_timeout. (Redis may still apply that
        # publish when it resumes, so it goes to another channel.)
        assert redis.proc is not None
        redis.proc.send_signal(signal.SIGSTOP)
        try:
            result, took = _timed_publish(srv, "chat:hung")
            assert result == {"error": {"code": 100, "message": "internal server error"}}
            assert took < IO_TIMEOUT + 0.4, took
        finally:
            redis.proc.send_signal(signal.SIGCONT)

        # A dead Redis: errors at once, clients stay connected.
        redis.stop(signal.SIGKILL)
        result, took = _timed_publish(srv, "rec:o")
        assert result["error"]["code"] == 100 and took < IO_TIMEOUT + 0.4, (result, took)
        assert api(srv, "history", {"channel": "rec:o"})["error"]["code"] == 100
        reply = sub.command("presence", channel="rec:o")
        assert "error" in reply  # answered: still connected
        newcomer = Client(srv, "late")
        failed = newcomer.command("subscribe", channel="rec:late")
        assert failed.get("error", {}).get("code") == 100, failed

        # Redis is back (same port, AOF): publishing works, the channel was resubscribed.
        redis.start()
        wait_for(lambda: "result" in _publish(srv, "chat:probe", {}), timeout=10)
        # PUB/SUB is at most once: wait until the node has resubscribed before publishing.
        wait_for(lambda: redis.cmd("PUBSUB", "NUMSUB", "out.client.rec:o")[1] == 1, timeout=5)
        assert _publish(srv, "rec:o", {"i": 3})["result"] == {"offset": 4, "epoch": epoch}
        assert sub.pubs(1)[0]["offset"] == 4

        # A subscriber that reconnects recovers what it missed, from before and after.
        sub.close()
        for i in range(4, 6):
            _publish(srv, "rec:o", {"i": i})
        back = Client(srv, "watcher")
        result2 = back.subscribe("rec:o", recover=True, offset=1, epoch=epoch)
        assert result2["recovered"] is True, result2
        assert [p["data"]["i"] for p in result2["publications"]] == [1, 2, 3, 4, 5]
    finally:
        close_all()
        srv.close()


def test_server_starts_while_redis_is_down(make_redis: Callable[..., RedisProcess]) -> None:
    redis = make_redis()
    port = redis.port
    redis.stop()
    config = redis_config(
        {"address": [f"127.0.0.1:{port}"], "prefix": "down", "io_timeout": "500ms"}
    )
    (srv,) = start_servers(config, 1)
    try:
        try:
            assert _publish(srv, "chat:x", {})["error"]["code"] == 100
        except urllib.error.URLError:
            pytest.fail("the API must answer while Redis is down")
        redis.start()
        wait_for(lambda: "result" in _publish(srv, "chat:x", {}), timeout=10)
        sub = Client(srv, "u")
        sub.subscribe("chat:x")
        _publish(srv, "chat:x", {"ok": 1})
        assert sub.pubs(1)[0]["data"] == {"ok": 1}
    finally:
        close_all()
        srv.close()


def test_engine_errors_of_closing_connections_are_handled(
    make_redis: Callable[..., RedisProcess],
) -> None:
    redis = make_redis()
    config = redis_config(
        {"address": [redis.address], "prefix": "orphan", "io_timeout": "500ms"},
        {"client": {"presence_update_interval": "500ms"}},
    )
    (srv,) = start_servers(config, 1)
    try:
        clients = [Client(srv, f"u{i}") for i in range(3)]
        for client in clients:
            client.subscribe("room:o")  # presence and join/leave
        redis.stop(signal.SIGKILL)
        # The periodic presence update fails: one warning per round, clients stay.
        wait_for(lambda: "presence update: 3 of 3 entries not refreshed" in srv.output())
        # A broadcast answers per channel: the engine failure and the unknown namespace.
        result = api(srv, "broadcast", {"channels": ["chat:b", "nope:b"], "data": {}})
        assert result == {
            "result": {
                "responses": [
                    {"error": {"code": 100, "message": "internal server error"}},
                    {"error": {"code": 102, "message": "unknown channel"}},
                ]
            }
        }
        # Closing connections cannot remove their presence nor send their leave: logged.
        for client in clients:
            client.close()
        wait_for(lambda: srv.output().count("presence of 'room:o' not removed") == 3)
        wait_for(lambda: srv.output().count("leave of 'room:o' not sent") == 3)
        assert srv.stop() == 0
        log = srv.output()
        assert "never retrieved" not in log and "Traceback" not in log, log
    finally:
        close_all()
        srv.close()


#: Enough connections that their cleanup takes several Redis round trips.
LEAVING = 40


def test_graceful_shutdown_removes_presence_and_sends_leaves(
    make_redis: Callable[..., RedisProcess],
) -> None:
    redis = make_redis()
    # A short shutdown timeout: these test clients never answer the server's close frame.
    config = redis_config(
        {"address": [redis.address], "prefix": "bye"}, {"shutdown": {"timeout": "1s"}}
    )
    a, b = start_servers(config, 2)
    try:
        watcher = Client(b, "watcher")
        watcher.subscribe("room:g")
        leaving = [Client(a, f"a{i}") for i in range(LEAVING)]
        for client in leaving:
            client.subscribe("room:g")
        assert watcher.push()["join"]["info"]["user"] == "watcher"  # its own join first
        joined = {watcher.push()["join"]["info"]["user"] for _ in range(LEAVING)}
        assert joined == {f"a{i}" for i in range(LEAVING)}
        assert a.stop() == 0  # SIGTERM: disconnects its clients with 3001, then exits
        # Presence entries live 60 s (presence_ttl) unless removed: they were removed.
        presence = api(b, "presence", {"channel": "room:g"})["result"]["presence"]
        assert [info["user"] for info in presence.values()] == ["watcher"]
        left = {watcher.push()["leave"]["info"]["user"] for _ in range(LEAVING)}
        assert left == {f"a{i}" for i in range(LEAVING)}
    finally:
        close_all()
        a.close()
        b.close()
