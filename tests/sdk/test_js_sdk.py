"""centrifuge-js 5.8.0 (in Node) against a real server: each test runs one script of
`tests/sdk/js/` and asserts on the JSON line it prints."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
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
from tests.serverproc import API_KEY, ServerProcess, require

pytestmark = pytest.mark.sdk

JS_DIR = Path(__file__).resolve().parent / "js"


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, once the SDK's npm packages are installed."""
    path = shutil.which("node")
    require(path is not None, "node is not installed")
    assert path is not None
    require(
        (JS_DIR / "node_modules" / "centrifuge").is_dir()
        and (JS_DIR / "node_modules" / "ws").is_dir(),
        "tests/sdk/js/node_modules is missing (run: npm ci --prefix tests/sdk/js)",
    )
    return path


def _command(node: str, script: str, args: dict[str, str]) -> list[str]:
    cmd = [node, str(JS_DIR / script)]
    for name, value in args.items():
        cmd += [f"--{name}", value]
    return cmd


def _parse(script: str, returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    context = f"{script} exited {returncode}\nstdout: {stdout}\nstderr: {stderr}"
    assert lines, f"no output: {context}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert "fatal" not in result and "timedOut" not in result, context
    assert returncode == 0, context
    return result


def run_script(
    node: str, script: str, args: dict[str, str], timeout: float = 20.0
) -> dict[str, Any]:
    """Run a scenario script to its end and return the JSON it printed."""
    done = subprocess.run(
        _command(node, script, args), capture_output=True, text=True, timeout=timeout, cwd=JS_DIR
    )
    return _parse(script, done.returncode, done.stdout, done.stderr)


def run_script_with(
    node: str,
    script: str,
    args: dict[str, str],
    action: Callable[[subprocess.Popen[str]], None],
) -> dict[str, Any]:
    """Start a scenario script, call `action(proc)` while it runs, then collect its JSON."""
    proc = subprocess.Popen(
        _command(node, script, args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=JS_DIR,
    )
    try:
        action(proc)
    except BaseException:
        proc.kill()
        stdout, stderr = proc.communicate()
        print(f"{script} output:\n{stdout}\n{stderr}")  # shown with the failure
        raise
    try:
        stdout, stderr = proc.communicate(timeout=25)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return _parse(script, proc.returncode, stdout, stderr)


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
