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
