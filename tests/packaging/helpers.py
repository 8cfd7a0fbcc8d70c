"""Shared by the packaging tests: where the artifacts are, and an end-to-end SDK check."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cent import PublishRequest

from tests.sdk.common import cent_client, eventually, token
from tests.sdk.pysdk import ClientLog, SubLog, new_client, run
from tests.serverproc import ROOT, ServerProcess, ci

#: what the admin page and login need in a server config
ADMIN_CONFIG: dict[str, Any] = {
    "admin": {"enabled": True, "password": "packaging-test", "secret": "packaging-test-secret"}
}


def dist() -> Path:
    """The folder `make test-packaging` built the artifacts into."""
    return (ROOT / os.environ["CENTRIFUGO_FAST_DIST"]).resolve()


def artifact(pattern: str) -> Path:
    """The one file in dist/ matching `pattern`."""
    matches = sorted(dist().glob(pattern))
    assert len(matches) == 1, f"expected one {pattern} in {dist()}, found {matches}"
    return matches[0]


def tool(name: str) -> str:
    """A command-line tool, from PATH, the test venv or build/tools; fail in CI if missing."""
    for candidate in (
        shutil.which(name),
        shutil.which(name, path=str(Path(sys.executable).parent)),
        shutil.which(name, path=str(ROOT / "build" / "tools")),
    ):
        if candidate:
            return candidate
    if ci():
        pytest.fail(f"CI=true and {name} is not installed")
    pytest.skip(f"{name} is not installed")


def twins_of(command: list[str], **env: str) -> dict[str, str]:
    """The `twins:` line of `<command> version`, as {selector: compiled|pure}."""
    result = subprocess.run(
        [*command, "version"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[1]
    assert line.startswith("twins: "), result.stdout
    return dict(item.split("=") for item in line.removeprefix("twins: ").split())


def sdk_roundtrip(server: ServerProcess, channel: str = "chat:packaged") -> None:
    """A centrifuge-python client subscribes; a publication through the HTTP API (cent)
    reaches it."""
    payload = {"text": "hello from a package", "n": 11}
    log, sub_log = ClientLog(), SubLog()
    with cent_client(server) as cent:

        async def scenario(clients: list[Any]) -> None:
            client = new_client(server, log, token("packager"))
            clients.append(client)
            sub = client.new_subscription(channel, events=sub_log)
            await client.connect()
            await sub.subscribe()
            await sub.ready(5.0)
            await asyncio.to_thread(cent.publish, PublishRequest(channel=channel, data=payload))
            await eventually(lambda: len(sub_log.publications) >= 1, "the publication")

        run(scenario, log, sub_log)
    assert log.errors == [] and sub_log.errors == []
    assert sub_log.publications == [(payload, None)]


def admin_page(server: ServerProcess) -> str:
    """The admin interface's page (package data: admin/web/index.html)."""
    url = f"http://{server.host}:{server.port}/"
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()
