"""Redis Cluster with 3 masters: publish, subscribe, history, presence (done-when (f))."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis.helpers import Client, api, redis_config, start_servers, wait_for
from tests.redis.redisproc import (
    RedisProcess,
    create_cluster,
    free_cluster_port,
    require_redis,
)
from tests.wsclient import close_all

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[RedisProcess]]:
    require_redis()
    nodes: list[RedisProcess] = []
    try:
        for _ in range(3):
            nodes.append(
                RedisProcess(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                    port=free_cluster_port(),
                ).start()
            )
        create_cluster(nodes)
        yield nodes
    finally:
        for node in nodes:
            node.close()


def test_cluster_publish_subscribe_history(cluster: list[RedisProcess]) -> None:
    a, b, c = cluster
    base = {"prefix": "cl", "io_timeout": "2s"}
    legacy = redis_config({**base, "cluster_address": [a.address]})
    by_url = redis_config({**base, "address": [f"redis+cluster://{b.address}?addr={c.address}"]})
    (first,) = start_servers(legacy, 1)
    (second,) = start_servers(by_url, 1)
    try:
        channels = [f"hist:k{i}" for i in range(12)]
        sub = Client(second, "s")
        for channel in channels:
            sub.subscribe(channel)
        for round_ in range(2):
            for channel in channels:
                result = api(first, "publish", {"channel": channel, "data": {"r": round_}})
                assert result["result"]["offset"] == round_ + 1, result
        got: dict[str, list[int]] = {}
        for _ in range(2 * len(channels)):
            push = sub.push()
            got.setdefault(push["channel"], []).append(push["pub"]["offset"])
        assert got == {channel: [1, 2] for channel in channels}
        for channel in channels:
            history = api(second, "history", {"channel": channel, "limit": -1})["result"]
            assert [p["data"]["r"] for p in history["publications"]] == [0, 1]
        # Keys carry the {channel} hash tag and spread over the masters.
        holders = set()
        for channel in channels:
            for i, node in enumerate(cluster):
                try:
                    if node.cmd("EXISTS", f"cl.stream.{{{channel}}}") == 1:
                        holders.add(i)
                except RuntimeError as exc:  # MOVED: another master owns the slot
                    assert str(exc).startswith("MOVED")
        assert len(holders) >= 2
        # Plain publish (no history), a client publish, presence and join across nodes.
        chat = Client(first, "chatter")
        chat.subscribe("room:c")
        other = Client(second, "other")
        other.subscribe("room:c")
        assert chat.push()["join"]["info"]["user"] == "chatter"
        assert chat.push()["join"]["info"]["user"] == "other"
        assert api(second, "publish", {"channel": "room:c", "data": {"x": 1}}) == {"result": {}}
        assert chat.pubs(1)[0]["data"] == {"x": 1}
        presence = api(first, "presence", {"channel": "room:c"})["result"]["presence"]
        assert sorted(info["user"] for info in presence.values()) == ["chatter", "other"]
        wait_for(lambda: len(api(first, "info", {})["result"]["nodes"]) == 2, timeout=8)
    finally:
        close_all()
        first.close()
        second.close()
