"""Server API `broadcast` on the Redis engine: channels are published concurrently (their
round trips overlap), the responses keep the request order and carry per-channel errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.redis.helpers import Client, api, redis_config, start_servers
from tests.redis.redisproc import RedisProcess
from tests.wsclient import close_all

pytestmark = pytest.mark.slow

CHANNELS = 200


def test_broadcast_on_redis(make_redis: Callable[..., RedisProcess]) -> None:
    redis = make_redis()
    a, b = start_servers(redis_config({"address": [redis.address], "prefix": "bc"}), 2)
    try:
        # hist:i is at offset i % 5 before the broadcast, so each answer names its channel.
        channels = [f"hist:c{i}" for i in range(CHANNELS)]
        for i, channel in enumerate(channels):
            for _ in range(i % 5):
                assert "result" in api(a, "publish", {"channel": channel, "data": {}})
        watcher = Client(b, "w")
        for channel in channels[:3]:
            watcher.subscribe(channel)
        request = [*channels[:100], "", "nope:x", "chat:plain", *channels[100:]]
        result = api(a, "broadcast", {"channels": request, "data": {"all": True}})
        responses = result["result"]["responses"]
        assert len(responses) == len(request)
        epochs = {r["result"]["epoch"] for r in responses if "offset" in r.get("result", {})}
        assert len(epochs) == CHANNELS  # one stream per channel
        offsets = [r.get("result", {}).get("offset") for r in responses]
        expected = [i % 5 + 1 for i in range(CHANNELS)]
        assert offsets == [*expected[:100], None, None, None, *expected[100:]]
        assert responses[100:103] == [
            {"error": {"code": 107, "message": "bad request"}},
            {"error": {"code": 102, "message": "unknown channel"}},
            {"result": {}},  # no history in chat: no position
        ]
        # Subscribers on another node receive it, at the offset the response named.
        pubs = watcher.pubs(3)
        assert sorted(p["offset"] for p in pubs) == [1, 2, 3]
        assert {p["data"]["all"] for p in pubs} == {True}
    finally:
        close_all()
        a.close()
        b.close()
