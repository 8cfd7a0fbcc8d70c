"""Client-side sharding over three Redis instances (done-when (b))."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from centrifugo_fast.engine.redis.keys import shard_index
from tests.redis.helpers import Client, api, redis_config, start_servers
from tests.redis.redisproc import RedisProcess
from tests.wsclient import close_all

pytestmark = pytest.mark.slow


def test_channels_spread_over_shards(make_redis: Callable[..., RedisProcess]) -> None:
    shards = [make_redis() for _ in range(3)]
    config = redis_config({"address": [s.address for s in shards], "prefix": "sh"})
    first, second = start_servers(config, 2)
    try:
        channels = [f"hist:c{i}" for i in range(24)]
        subscriber = Client(second, "sub")
        for channel in channels:
            subscriber.subscribe(channel)
        for round_ in range(2):
            for channel in channels:
                result = api(first, "publish", {"channel": channel, "data": {"r": round_}})
                assert result["result"]["offset"] == round_ + 1
        got: dict[str, list[int]] = {}
        for _ in range(2 * len(channels)):
            push = subscriber.push()
            got.setdefault(push["channel"], []).append(push["pub"]["offset"])
        assert got == {channel: [1, 2] for channel in channels}  # per-channel order kept
        for channel in channels:
            history = api(first, "history", {"channel": channel, "limit": -1})["result"]
            assert [p["data"]["r"] for p in history["publications"]] == [0, 1]
        # Every channel's keys live on the shard its jump hash names, and all shards are used.
        for channel in channels:
            expected = shard_index(channel, 3)
            for i, shard in enumerate(shards):
                exists = shard.cmd("EXISTS", f"sh.stream.{channel}", f"sh.stream.meta.{channel}")
                assert exists == (2 if i == expected else 0), (channel, i)
        for shard in shards:
            assert shard.cmd("KEYS", "sh.stream.meta.*")
        # Control messages travel over every shard: all nodes see each other.
        nodes = api(first, "info", {})["result"]["nodes"]
        assert len(nodes) in (1, 2)
    finally:
        close_all()
        first.close()
        second.close()


def test_jump_hash_vectors() -> None:
    from centrifugo_fast.engine.redis.keys import fnv1a_64, jump_hash

    assert jump_hash(1, 7) == 6 and jump_hash(1, 18) == 17
    assert jump_hash(0xDEADBEEF, 4) == 3 and jump_hash(0xDEADBEEF, 17) == 16
    assert fnv1a_64(b"a") == 0xAF63DC4C8601EC8C
    assert shard_index("anything", 1) == 0
