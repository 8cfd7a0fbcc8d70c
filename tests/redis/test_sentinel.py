"""Redis Sentinel: the master dies, Sentinel promotes the replica (done-when (c))."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest

from tests.redis.helpers import Client, api, redis_config, start_servers, wait_for
from tests.redis.redisproc import RedisProcess, require_redis, sentinel_config
from tests.wsclient import close_all

pytestmark = pytest.mark.slow


class SentinelSetup:
    """1 master + 1 replica watched by 3 sentinels."""

    def __init__(self) -> None:
        self.master = RedisProcess().start()
        self.replica = RedisProcess("--replicaof", "127.0.0.1", str(self.master.port)).start()
        conf = sentinel_config(self.master.port)
        self.sentinels = [RedisProcess(sentinel=True, config=conf).start() for _ in range(3)]

    def all(self) -> list[RedisProcess]:
        return [self.master, self.replica, *self.sentinels]

    def ready(self) -> bool:
        info = self.replica.cmd("INFO", "replication")
        if b"master_link_status:up" not in info:
            return False
        for sentinel in self.sentinels:
            fields = sentinel.cmd("SENTINEL", "MASTER", "mymaster")
            state = dict(zip(fields[::2], fields[1::2], strict=True))
            if state[b"num-other-sentinels"] != b"2" or state[b"num-slaves"] != b"1":
                return False
        return True

    def master_port(self) -> int:
        host_port = self.sentinels[0].cmd("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
        return int(host_port[1])


@pytest.fixture
def sentinel_setup() -> Iterator[SentinelSetup]:
    require_redis(sentinel=True)
    setup = SentinelSetup()
    try:
        wait_for(setup.ready, timeout=15, step=0.1)
        yield setup
    finally:
        close_all()
        for proc in setup.all():
            proc.close()


def _publish(srv: Any, channel: str, data: Any) -> dict[str, Any]:
    result: dict[str, Any] = api(srv, "publish", {"channel": channel, "data": data})
    return result


def test_failover(sentinel_setup: SentinelSetup) -> None:
    s1, s2, s3 = (s.port for s in sentinel_setup.sentinels)
    url = (
        f"redis+sentinel://127.0.0.1:{s1}?sentinel_master_name=mymaster"
        f"&addr=127.0.0.1:{s2}&addr=127.0.0.1:{s3}"
    )
    redis = {"prefix": "sen", "io_timeout": "1s", "connect_timeout": "500ms"}
    by_url = redis_config({**redis, "address": [url]})
    legacy = redis_config(
        {
            **redis,
            "sentinel_address": [f"127.0.0.1:{s1},127.0.0.1:{s2},127.0.0.1:{s3}"],
            "sentinel_master_name": "mymaster",
        }
    )
    (publisher,) = start_servers(by_url, 1)
    (home,) = start_servers(legacy, 1)
    try:
        live = Client(home, "live")
        epoch = live.subscribe("rec:s")["epoch"]
        leaver = Client(home, "leaver")
        leaver.subscribe("rec:s")
        for i in range(3):
            assert _publish(publisher, "rec:s", {"i": i})["result"]["offset"] == i + 1
        assert [p["offset"] for p in live.pubs(3)] == [1, 2, 3]
        assert leaver.pubs(1)[0]["offset"] == 1
        leaver.close()  # will recover from offset 1 after the failover

        master = sentinel_setup.master
        assert master.cmd("WAIT", 1, 5000) == 1  # the replica has every write
        old_port = master.port
        master.stop(signal.SIGKILL)

        wait_for(lambda: sentinel_setup.master_port() != old_port, timeout=20, step=0.2)
        new_master = sentinel_setup.replica
        wait_for(lambda: "result" in _publish(publisher, "chat:probe", {}), timeout=15)
        # The node with subscribers moved its PUB/SUB connection to the new master.
        wait_for(lambda: new_master.cmd("PUBSUB", "NUMSUB", "sen.client.rec:s")[1] == 1, timeout=10)
        for i in range(3, 5):
            result = _publish(publisher, "rec:s", {"i": i})["result"]
            assert result == {"offset": i + 1, "epoch": epoch}
        # The client stayed connected and keeps receiving in order.
        assert [p["offset"] for p in live.pubs(2)] == [4, 5]
        back = Client(home, "leaver")
        result = back.subscribe("rec:s", recover=True, offset=1, epoch=epoch)
        assert result["recovered"] is True, result
        assert [p["data"]["i"] for p in result["publications"]] == [1, 2, 3, 4]
        history = api(publisher, "history", {"channel": "rec:s", "limit": -1})["result"]
        assert [p["offset"] for p in history["publications"]] == [1, 2, 3, 4, 5]
    finally:
        close_all()
        publisher.close()
        home.close()
