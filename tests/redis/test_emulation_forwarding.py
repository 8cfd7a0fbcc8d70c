"""HTTP-streaming/SSE emulation behind a balancer: centrifuge-js keeps its stream on node A
while its `POST /emulation` requests reach node B, which forwards them to A over the
control bus (to A's own channel only)."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.redis.helpers import api, redis_config, start_servers, wait_for
from tests.redis.redisproc import RedisProcess, require_redis
from tests.sdk.common import token
from tests.sdk.jsrun import JS_DIR, node_path, run_script_with, wait_marker
from tests.serverproc import ServerProcess, require
from tests.wsclient import close_all

pytestmark = [pytest.mark.slow, pytest.mark.sdk]


@pytest.fixture(scope="module")
def js() -> str:
    """The node executable, with the SDK and the eventsource polyfill installed."""
    path = node_path()
    require(
        (JS_DIR / "node_modules" / "eventsource").is_dir(),
        "tests/sdk/js/node_modules lacks eventsource (npm ci --prefix tests/sdk/js)",
    )
    return path


@pytest.fixture(scope="module")
def nodes() -> Iterator[tuple[ServerProcess, ServerProcess, RedisProcess]]:
    require_redis()
    redis = RedisProcess().start()
    config = redis_config(
        {"address": [redis.address], "prefix": "emu"},
        {
            "http_stream": {"enabled": True},
            "sse": {"enabled": True},
            # Pongs travel through /emulation too: with forwarding broken the client
            # would be disconnected for a missing pong within the test.
            "client": {"ping_interval": "2s", "pong_timeout": "1s"},
        },
    )
    servers = start_servers(config, 2)
    try:

        def both_known() -> bool:
            # Each node must have seen the other's announcement before forwarding to it.
            return all(len(api(srv, "info", {})["result"]["nodes"]) == 2 for srv in servers)

        wait_for(both_known, 10)
        yield servers[0], servers[1], redis
    finally:
        close_all()
        for srv in servers:
            srv.close()
        redis.close()


def _url(srv: ServerProcess, path: str) -> str:
    return f"http://{srv.host}:{srv.port}{path}"


def _node_id(srv: ServerProcess) -> str:
    uid: str = api(srv, "info", {})["result"]["nodes"][0]["uid"]
    return uid


def _post(srv: ServerProcess, body: dict[str, Any]) -> int:
    req = urllib.request.Request(
        _url(srv, "/emulation"),
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.parametrize("transport", ["http_stream", "sse"])
def test_stream_on_one_node_commands_through_another(
    js: str, nodes: tuple[ServerProcess, ServerProcess, RedisProcess], transport: str
) -> None:
    a, b, redis = nodes
    channel = f"chat:cross-{transport}"
    args = {
        "transports": json.dumps(
            [{"transport": transport, "endpoint": _url(a, f"/connection/{transport}")}]
        ),
        "emulation": _url(b, "/emulation"),
        "token": token("alice"),
        "channel": channel,
        "count": "2",
        "stay": "5000",
    }
    watched = redis.cmd("PUBSUB", "NUMSUB", f"emu.node.{_node_id(a)}")[1]
    assert watched == 1  # node A listens on its own channel

    def publish_from_b(proc: subprocess.Popen[str]) -> None:
        wait_marker(proc, "subscribed")
        # The connection lives on A (each node lists itself first).
        assert api(a, "info", {})["result"]["nodes"][0]["num_clients"] == 1
        assert api(b, "info", {})["result"]["nodes"][0]["num_clients"] == 0
        assert api(b, "publish", {"channel": channel, "data": {"from": "api"}}) == {"result": {}}

    result = run_script_with(js, "emulation.js", args, publish_from_b)
    client_id = result["connected"][0]["client"]
    # One connection, never re-established: subscribe, publish and every pong reached A.
    assert result["connected"] == [{"client": client_id, "transport": transport}]
    assert result["disconnected"] == [] and result["errors"] == []
    assert result["publishResult"] == {}
    assert sorted(result["publications"], key=json.dumps) == sorted(
        [{"data": {"from": "js"}, "client": client_id}, {"data": {"from": "api"}, "client": None}],
        key=json.dumps,
    )
    assert result["finalState"] == "connected"
    assert result["presenceError"] == {"code": 108, "message": "not available"}


def test_unknown_node_is_404_and_known_node_is_204(
    nodes: tuple[ServerProcess, ServerProcess, RedisProcess],
) -> None:
    a, b, _ = nodes
    ping = json.dumps([{"id": 1, "ping": {}}])
    assert _post(b, {"session": "gone", "node": "no-such-node", "data": ping}) == 404
    # A live node: forwarded (A drops a batch for a session it does not have).
    assert _post(b, {"session": "gone", "node": _node_id(a), "data": ping}) == 204
    assert _post(a, {"session": "gone", "node": _node_id(a), "data": ping}) == 204
