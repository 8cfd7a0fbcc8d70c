"""The admin interface in a real browser: Debian's Chromium, headless, driven by playwright-core
from `admin_ui.js`, against a real server with a real centrifuge-js client connected.

Screenshots of every page are written to `tests/browser/artifacts/` (git-ignored).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import (
    API_KEY,
    BASE_CONFIG,
    SECRET,
    ServerProcess,
    free_port,
    merge,
    require,
)

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
PASSWORD = "browser-test-admin-password-5c1e"
ADMIN_SECRET = "browser-test-admin-secret-9f3a7d0e2b"
CHANNEL = "room:lobby"
USER = "alice"


def chromium_path() -> str:
    """Debian's Chromium (or $CHROMIUM_PATH); skipped locally, a failure in CI when missing."""
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    path = path or shutil.which("chromium-browser")
    require(path is not None, "chromium is not installed (apt-get install chromium)")
    assert path is not None
    return path


def node_path() -> str:
    """Node, once the npm packages of tests/browser are installed."""
    path = shutil.which("node")
    require(path is not None, "node is not installed")
    require(
        (HERE / "node_modules" / "playwright-core").is_dir()
        and (HERE / "node_modules" / "centrifuge").is_dir(),
        "tests/browser/node_modules is missing (run: make test-browser-deps)",
    )
    assert path is not None
    return path


@pytest.fixture(scope="module")
def admin_server() -> Iterator[tuple[ServerProcess, int]]:
    """A server whose API and admin live on a separate internal port."""
    internal = free_port()
    config = merge(
        BASE_CONFIG,
        {
            "http_server": {"internal_port": internal},
            "admin": {"enabled": True, "password": PASSWORD, "secret": ADMIN_SECRET},
            "channel": {
                "namespaces": [
                    *BASE_CONFIG["channel"]["namespaces"],
                    {
                        "name": "room",
                        "presence": True,
                        "history_size": 50,
                        "history_ttl": "300s",
                        "allow_subscribe_for_client": True,
                    },
                ]
            },
        },
    )
    server = ServerProcess(config).start()
    try:
        yield server, internal
    finally:
        server.close()


def run_admin_scenario(
    node: str, chromium: str, server: ServerProcess, internal_port: int
) -> dict[str, Any]:
    """Run admin_ui.js to its end; return the JSON line it printed."""
    internal = f"http://{server.host}:{internal_port}"
    args = {
        "admin-url": f"{internal}/",
        "api-url": f"{internal}/api",
        "api-key": API_KEY,
        "ws-url": server.ws_url,
        "token": make_token(SECRET, USER, 600),
        "user": USER,
        "password": PASSWORD,
        "channel": CHANNEL,
        "chromium": chromium,
        "artifacts": str(ARTIFACTS),
        "secrets": ",".join([PASSWORD, ADMIN_SECRET, SECRET, API_KEY]),
    }
    cmd = [node, str(HERE / "admin_ui.js")]
    for name, value in args.items():
        cmd += [f"--{name}", value]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=HERE)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    context = f"admin_ui.js exited {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    assert lines, context
    result: dict[str, Any] = json.loads(lines[-1])
    assert "fatal" not in result and "timedOut" not in result, context
    assert done.returncode == 0 and result.get("done"), context
    return result


def test_admin_ui_in_chromium(admin_server: tuple[ServerProcess, int]) -> None:
    node = node_path()
    chromium = chromium_path()
    server, internal_port = admin_server
    result = run_admin_scenario(node, chromium, server, internal_port)

    # A wrong password is refused with a clear message and no token is stored.
    assert result["wrongPasswordMessage"] == "Wrong password."
    assert result["tokenAfterWrongPassword"] is None
    # The status page shows this node with the connected SDK client.
    assert result["nodeNames"] == [f"{os.uname().nodename}_{server.port}"]
    assert result["nodeClients"] == ["1"]
    # Channels: listed with its subscriber; the pattern filter hides it when it does not match.
    assert result["channelSubscribers"] == "1"
    assert result["filterHidesChannel"] is True
    # The channel view: the SDK client in presence, both publications in the live tail.
    assert result["presenceClient"] == result["sdkClientId"]
    assert result["presenceStats"] == "1 client(s), 1 user(s)"
    assert result["publishResult"] == "Published at offset 1."
    assert result["apiPublishStatus"] == 200
    assert result["tailTexts"] == [
        {"text": "published by the backend"},
        {"text": "published from the admin page", "n": 1},
    ]
    assert result["sdkPublications"][:2] == [
        {"text": "published from the admin page", "n": 1},
        {"text": "published by the backend"},
    ]
    assert result["historyCount"] == 2
    # Disconnect from the presence row: the SDK client gets 3503 and leaves presence.
    assert result["sdkDisconnected"][0]["code"] == 3503
    assert result["presenceAfterDisconnect"] == 0
    # Actions: invalid JSON is caught before sending; a failed call says why.
    assert result["invalidJsonMessage"].startswith("Not valid JSON")
    assert result["invalidJsonResult"] == ""
    assert "unknown channel" in result["unknownChannelResult"]
    assert "error" in result["unknownChannelClass"]
    assert result["publishActionResult"].startswith("Published at offset 3")
    # Secrets never reach a page; the config view shows them masked.
    assert result["statusSecrets"] == []
    assert result["configSecrets"] == []
    assert result["configMasked"] is True
    # Logout revokes the token.
    assert result["afterLogoutStatus"] == 401
    # No script errors (CSP violations included) in the console.
    assert result["consoleErrors"] == []
    names = sorted(Path(p).name for p in result["screenshots"])
    assert len(names) == 9
    for path in result["screenshots"]:
        assert Path(path).stat().st_size > 1000
