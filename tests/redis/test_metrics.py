"""Prometheus metrics of the Redis engine: PUB/SUB connection errors, cross-node messages."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable

from tests.redis.helpers import Client, api, redis_config, start_servers, wait_for
from tests.redis.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.wsclient import close_all


def _metric(srv: ServerProcess, line_prefix: str) -> float:
    """The sum of the samples of one node's /metrics whose line starts with `line_prefix`."""
    url = f"http://{srv.host}:{srv.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        page = response.read().decode()
    values = [
        float(line.rsplit(" ", 1)[1]) for line in page.splitlines() if line.startswith(line_prefix)
    ]
    assert values, f"no {line_prefix} on the page"
    return sum(values)


def test_pub_sub_errors_and_messages_across_nodes(make_redis: Callable[..., RedisProcess]) -> None:
    redis = make_redis()
    config = redis_config(
        {"address": [f"127.0.0.1:{redis.port}"], "prefix": "metrics", "io_timeout": "500ms"},
        {"prometheus": {"enabled": True}},
    )
    a, b = start_servers(config, 2)
    errors = 'centrifugo_broker_redis_pub_sub_errors{broker_name="",error="connection"}'
    received = 'centrifugo_node_messages_received_count{type="publication"'
    try:
        assert _metric(b, errors) == 0
        sub = Client(b, "u")
        sub.subscribe("chat:m")
        assert "result" in api(a, "publish", {"channel": "chat:m", "data": {"n": 1}})
        assert sub.pubs(1)[0]["data"] == {"n": 1}
        # Published on node a, fanned out on node b: b received it from Redis.
        assert _metric(a, 'centrifugo_node_messages_sent_count{type="publication"') == 1
        assert _metric(b, received) == 1
        assert (
            _metric(
                b,
                'centrifugo_transport_messages_sent{transport="websocket",frame_type="push_publication"',
            )
            == 1
        )
        wait_for(lambda: _metric(b, "centrifugo_node_num_nodes ") == 2)
        redis.stop()
        wait_for(lambda: _metric(b, errors) >= 1, timeout=10)
    finally:
        close_all()
        a.close()
        b.close()
