"""Run a real centrifugo-fast server process on a free loopback port for tests."""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-key-for-hs256-tokens-0123456789abcdef"
API_KEY = "test-api-key"

#: The configuration most tests use; tests deep-merge their own changes into it.
BASE_CONFIG: dict[str, Any] = {
    "client": {
        "token": {"hmac_secret_key": SECRET},
        "allow_anonymous_connect_without_token": False,
    },
    "http_api": {"key": API_KEY},
    "channel": {
        "without_namespace": {"allow_subscribe_for_client": True},
        "namespaces": [
            {
                "name": "chat",
                "allow_subscribe_for_client": True,
                "allow_publish_for_subscriber": True,
            },
            {"name": "open", "allow_subscribe_for_client": True, "allow_publish_for_client": True},
            {"name": "locked"},
        ],
    },
    "log": {"level": "debug"},
    "shutdown": {"timeout": "5s"},
}


def ci() -> bool:
    """True in CI, where a missing tool must fail rather than skip."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str) -> None:
    """Skip locally, fail in CI, when a test's prerequisite is missing."""
    if condition:
        return
    if ci():
        pytest.fail(f"CI=true and {what}")
    pytest.skip(what)


def free_port() -> int:
    """A TCP port that is free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `extra` into a copy of `base` (lists are replaced)."""
    result = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


class ServerProcess:
    """A centrifugo-fast server started as `python -m centrifugo_fast` with a config file."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        port: int | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.config = config
        #: what runs the server; the packaging tests pass an installed binary
        self.command = command or [sys.executable, "-m", "centrifugo_fast"]
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._dir = tempfile.TemporaryDirectory(prefix="cf-fast-")
        self.config_path = Path(self._dir.name) / "config.json"
        self.config_path.write_text(json.dumps(config))
        self.log_path = Path(self._dir.name) / "server.log"
        self._log = self.log_path.open("wb")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ws_url(self) -> str:
        """The bidirectional WebSocket endpoint."""
        return f"ws://{self.host}:{self.port}/connection/websocket"

    @property
    def api_url(self) -> str:
        """The server API prefix (what `cent` takes)."""
        return f"http://{self.host}:{self.port}/api"

    def start(self, timeout: float = 15.0) -> ServerProcess:
        """Start the process and wait until it accepts connections."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [
            *self.command,
            "-c",
            str(self.config_path),
            "-a",
            self.host,
            "-p",
            str(self.port),
        ]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                output = self.output()
                self.close()
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{output}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        output = self.output()
        self.close()
        raise RuntimeError(f"server did not start in {timeout}s:\n{output}")

    def output(self) -> str:
        """Everything the server logged so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Signal the process and wait for it; return its exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        if not self._log.closed:
            self._log.close()
        return code

    def close(self) -> None:
        """Stop the process and remove its files."""
        self.stop()
        self._dir.cleanup()


def running_server(extra: dict[str, Any] | None = None) -> Iterator[ServerProcess]:
    """Generator for fixtures: a started server with BASE_CONFIG merged with `extra`."""
    server = ServerProcess(merge(BASE_CONFIG, extra or {})).start()
    try:
        yield server
    finally:
        server.close()


def api_call(server: ServerProcess, method: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST one server API call with the test key; the decoded JSON answer."""
    req = urllib.request.Request(
        f"{server.api_url}/{method}", data=json.dumps(body).encode(), headers={"X-API-Key": API_KEY}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        result: dict[str, Any] = json.load(resp)
        return result


def wait_subscribers(server: ServerProcess, channel: str, timeout: float = 5.0) -> None:
    """Wait until `channel` has a subscriber (the `channels` API method lists it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if channel in api_call(server, "channels", {})["result"]["channels"]:
            return
        time.sleep(0.02)
    raise AssertionError(f"no subscriber in {channel}")
