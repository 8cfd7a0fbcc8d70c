"""centrifuge-js 5.8.0 in Node over the other transports: HTTP-streaming and SSE emulation
(`eventsource` 2.0.2 as the EventSource, Node's fetch), the fallback from an unavailable
WebSocket, and SockJS through `sockjs-client` 1.6.1."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from cent import PublishRequest

from tests.sdk.common import cent_client, token, wait_for_subscriber
from tests.sdk.jsrun import run_script_with, wait_marker
from tests.serverproc import ServerProcess, require, running_server

pytestmark = pytest.mark.sdk

CONFIG = {
    "http_stream": {"enabled": True},
    "sse": {"enabled": True},
    "sockjs": {"enabled": True},
    "client": {"ping_interval": "2s", "pong_timeout": "1s"},
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    yield from running_server(CONFIG)


@pytest.fixture(scope="module")
def polyfills(node: str) -> str:
    """The node executable, once eventsource and sockjs-client are installed too."""
    from tests.sdk.jsrun import JS_DIR

    modules = JS_DIR / "node_modules"
    require(
        (modules / "eventsource").is_dir() and (modules / "sockjs-client").is_dir(),
        "tests/sdk/js/node_modules lacks eventsource/sockjs-client (npm ci --prefix tests/sdk/js)",
    )
    return node


def _http(server: ServerProcess, path: str) -> str:
    return f"http://{server.host}:{server.port}{path}"


def _publish_after_subscribe(server: ServerProcess, channel: str, data: Any) -> Any:
    def action(proc: subprocess.Popen[str]) -> None:
        wait_marker(proc, "subscribed")
        with cent_client(server) as cent:
            wait_for_subscriber(cent, channel, alive=lambda: proc.poll() is None)
            cent.publish(PublishRequest(channel=channel, data=data))

    return action


def _emulation(
    node: str,
    server: ServerProcess,
    transports: list[dict[str, str]],
    channel: str,
    **extra: str,
) -> dict[str, Any]:
    args = {
        "transports": json.dumps(transports),
        "emulation": _http(server, "/emulation"),
        "token": token("alice"),
        "channel": channel,
        "count": "2",
        **extra,
    }
    from_api = {"from": "api"}
    result = run_script_with(
        node, "emulation.js", args, _publish_after_subscribe(server, channel, from_api)
    )
    client_id = result["connected"][0]["client"]
    assert result["publishResult"] == {}
    assert sorted(result["publications"], key=json.dumps) == sorted(
        [{"data": {"from": "js"}, "client": client_id}, {"data": from_api, "client": None}],
        key=json.dumps,
    )
    assert result["finalState"] == "connected"
    assert result["presenceError"] == {"code": 108, "message": "not available"}
    return result


@pytest.mark.parametrize("transport", ["http_stream", "sse"])
def test_emulation_pubsub(polyfills: str, server: ServerProcess, transport: str) -> None:
    endpoint = {"transport": transport, "endpoint": _http(server, f"/connection/{transport}")}
    result = _emulation(polyfills, server, [endpoint], f"chat:{transport}", stay="5000")
    # Server pings came every 2 s and the pongs went through /emulation: no reconnect.
    assert result["connected"] == [
        {"client": result["connected"][0]["client"], "transport": transport}
    ]
    assert result["connecting"] == [{"code": 0, "reason": "connect called"}]
    assert result["disconnected"] == [] and result["errors"] == []


def test_http_stream_protobuf(polyfills: str, server: ServerProcess) -> None:
    endpoint = {"transport": "http_stream", "endpoint": _http(server, "/connection/http_stream")}
    result = _emulation(polyfills, server, [endpoint], "chat:pb-stream", protobuf="1")
    assert result["connected"][0]["transport"] == "http_stream"
    assert result["errors"] == []


def test_falls_back_from_unavailable_websocket(polyfills: str, server: ServerProcess) -> None:
    transports = [
        {"transport": "websocket", "endpoint": f"ws://{server.host}:{server.port}/no/websocket"},
        {"transport": "http_stream", "endpoint": _http(server, "/connection/http_stream")},
    ]
    result = _emulation(polyfills, server, transports, "chat:fallback")
    assert [c["transport"] for c in result["connected"]] == ["http_stream"]
    assert [e["type"] for e in result["errors"]] == ["transport"]


@pytest.mark.parametrize("kind", ["websocket", "xhr-streaming", "xhr-polling", "eventsource"])
def test_sockjs(polyfills: str, server: ServerProcess, kind: str) -> None:
    channel = f"chat:sockjs-{kind}"
    args = {
        "endpoint": _http(server, "/connection/sockjs"),
        "sockjs": kind,
        "token": token("bob"),
        "channel": channel,
        "count": "2",
    }
    result = run_script_with(
        polyfills, "sockjs.js", args, _publish_after_subscribe(server, channel, {"n": 1})
    )
    assert result["connected"] == [
        {"client": result["connected"][0]["client"], "transport": f"sockjs-{kind}"}
    ]
    assert result["errors"] == [] and result["disconnected"] == []
    assert result["subscribed"] == [{"channel": channel}]
    client_id = result["connected"][0]["client"]
    assert {"data": {"from": "sockjs"}, "info": {"client": client_id, "user": "bob"}} in result[
        "publications"
    ]
    assert {"data": {"n": 1}, "info": None} in result["publications"]
    assert result["finalState"] == "connected"
