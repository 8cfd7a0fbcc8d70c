"""centrifuge-js 5.8.0 (in Node) against a real server: each test runs one script of
`tests/sdk/js/` and asserts on the JSON line it prints."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from cent import PublishRequest

from tests.sdk.common import (
    PING_CONFIG,
    PING_SECONDS,
    bad_token,
    cent_client,
    expired_token,
    token,
    wait_for_subscriber,
)
from tests.sdk.jsrun import run_script, run_script_with
from tests.serverproc import API_KEY, ServerProcess

pytestmark = pytest.mark.sdk


def assert_stayed_connected(result: dict[str, Any]) -> None:
    """One `connect called` transition, a connection, and no disconnect or reconnect."""
    assert result["connecting"] == [{"code": 0, "reason": "connect called"}]
    assert result["disconnected"] == []
    assert len(result["connected"]) == 1
    client_id = result["connected"][0]["client"]
    assert isinstance(client_id, str) and len(client_id) >= 8
    assert result["connected"][0]["transport"] == "websocket"


def test_receives_publication_from_cent(node: str, server: ServerProcess) -> None:
    payload = {"text": "hello from cent", "n": 7, "nested": {"ok": True, "list": [1, "two"]}}

    def publish(proc: subprocess.Popen[str]) -> None:
        with cent_client(server) as cent:
            wait_for_subscriber(cent, "chat:room", alive=lambda: proc.poll() is None)
            cent.publish(PublishRequest(channel="chat:room", data=payload))

    args = {"url": server.ws_url, "token": token("alice"), "channel": "chat:room"}
    result = run_script_with(node, "pubsub.js", args, publish)
    assert_stayed_connected(result)
    assert result["errors"] == []
    assert result["subscribed"] == [{"channel": "chat:room"}]
    assert result["publications"] == [{"data": payload, "info": None}]
    assert result["finalState"] == "connected"


def test_client_publish_reaches_other_client_and_locked_is_denied(
    node: str, server: ServerProcess
) -> None:
    args = {
        "url": server.ws_url,
        "token-a": token("alice"),
        "token-b": token("bob"),
        "channel": "chat:js-publish",
        "denied-channel": "locked:js",
    }
    result = run_script(node, "client_publish.js", args)
    assert "publishError" not in result
    assert result["publishResult"] == {}
    sender_id = result["sender"]["connected"][0]["client"]
    assert result["receiver"]["publications"] == [
        {"data": {"text": "hello from js", "n": 42}, "info": {"client": sender_id, "user": "bob"}}
    ]
    assert result["deniedError"] == {"code": 103, "message": "permission denied"}
    assert "deniedResult" not in result
    for side in ("sender", "receiver"):
        assert_stayed_connected(result[side])
    assert result["senderState"] == result["receiverState"] == "connected"


def test_unsubscribe_stops_publications(node: str, server: ServerProcess) -> None:
    args = {
        "url": server.ws_url,
        "token": token("alice"),
        "channel": "chat:js-unsub",
        "api": server.api_url,
        "api-key": API_KEY,
    }
    result = run_script(node, "unsubscribe.js", args)
    assert_stayed_connected(result)
    assert result["publishBefore"] == {"result": {}}
    assert result["unsubscribed"] == [{"code": 0, "reason": "unsubscribe called"}]
    assert result["channelsAfter"] == {"result": {"channels": {}}}
    assert result["publishAfter"] == {"result": {}}
    assert result["publications"] == [{"data": {"seq": 1}, "info": None}]
    assert result["subStateAfter"] == "unsubscribed"
    assert result["clientStateAfter"] == "connected"


def test_invalid_token_disconnects_with_3500(node: str, server: ServerProcess) -> None:
    args = {"url": server.ws_url, "token": bad_token("alice")}
    result = run_script(node, "bad_token.js", args)
    assert result["disconnected"] == [{"code": 3500, "reason": "invalid token"}]
    # No reconnect: a single `connecting` (from connect()) and never connected.
    assert result["connecting"] == [{"code": 0, "reason": "connect called"}]
    assert result["connected"] == []
    assert result["states"] == ["connecting", "disconnected"]
    assert result["finalState"] == "disconnected"


def test_expired_token_is_refreshed_with_get_token(node: str, server: ServerProcess) -> None:
    args = {
        "url": server.ws_url,
        "token": expired_token("alice"),
        "fresh-token": token("alice"),
    }
    result = run_script(node, "expired_token.js", args)
    assert {"type": "connect", "code": 109, "message": "token expired"} in result["errors"]
    assert result["getTokenCalls"] == 1
    assert len(result["connected"]) == 1
    assert result["disconnected"] == []
    assert result["finalState"] == "connected"


def test_pings_keep_connection_alive(node: str, make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(PING_CONFIG)
    duration_ms = int(PING_SECONDS * 1000)
    args = {
        "url": srv.ws_url,
        "token": token("alice"),
        "duration": str(duration_ms),
        # The SDK reconnects when no data came for ping interval + 1 s.
        "max-ping-delay": "1000",
    }
    result = run_script(node, "ping.js", args, timeout=PING_SECONDS + 15)
    assert_stayed_connected(result)
    assert result["errors"] == []
    assert result["connectedForMs"] >= duration_ms
    assert result["counters"]["pings"] >= 3
    assert result["counters"]["pongs"] == result["counters"]["pings"]
    assert result["finalState"] == "connected"


def test_server_shutdown_makes_client_reconnect(
    node: str, make_server: Callable[..., ServerProcess]
) -> None:
    srv = make_server()
    exit_codes: list[int] = []

    def stop(proc: subprocess.Popen[str]) -> None:
        with cent_client(srv) as cent:
            wait_for_subscriber(cent, "chat:js-shutdown", alive=lambda: proc.poll() is None)
        exit_codes.append(srv.stop())

    args = {"url": srv.ws_url, "token": token("alice"), "channel": "chat:js-shutdown"}
    result = run_script_with(node, "shutdown.js", args, stop)
    assert exit_codes == [0]
    assert result["connecting"][:2] == [
        {"code": 0, "reason": "connect called"},
        {"code": 3001, "reason": "shutdown"},
    ]
    assert result["disconnected"] == []
    assert result["finalState"] == "connecting"
    assert result["subFinalState"] == "subscribing"
    assert result["unsubscribed"] == []


def test_unknown_namespace_subscription_fails_with_102(node: str, server: ServerProcess) -> None:
    args = {"url": server.ws_url, "token": token("alice"), "channel": "nope:room"}
    result = run_script(node, "unknown_namespace.js", args)
    assert result["unsubscribed"] == [{"code": 102, "reason": "unknown channel"}]
    assert result["subscribed"] == []
    # No resubscribe: one `subscribing` (from subscribe()).
    assert result["subscribing"] == [{"code": 0, "reason": "subscribe called"}]
    assert "readyResolved" not in result
    assert result["subFinalState"] == "unsubscribed"
    assert_stayed_connected(result)
    assert result["finalState"] == "connected"
