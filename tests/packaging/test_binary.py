"""The standalone executable (`make binary`): one file, no Python needed, compiled twins in."""

from __future__ import annotations

import platform
from collections.abc import Iterator
from pathlib import Path

import pytest
from cent import HistoryRequest, PublishRequest

from centrifugo_fast._version import __version__
from centrifugo_fast.cli import _TWIN_SELECTORS
from tests.packaging.helpers import ADMIN_CONFIG, admin_page, artifact, sdk_roundtrip, twins_of
from tests.redis.redisproc import RedisProcess, require_redis
from tests.sdk.common import cent_client
from tests.serverproc import BASE_CONFIG, ServerProcess, merge


@pytest.fixture(scope="module")
def binary() -> Path:
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower())
    system = platform.system().lower()
    return artifact(f"centrifugo-fast-{__version__}-{system}-{machine or platform.machine()}")


@pytest.fixture
def redis() -> Iterator[RedisProcess]:
    require_redis()
    proc = RedisProcess().start()
    yield proc
    proc.close()


def test_the_binary_runs_the_compiled_twins(binary: Path) -> None:
    # REQUIRE_EXTENSIONS=1 turns a fallback into an error, so this proves they load.
    compiled = twins_of([str(binary)], CENTRIFUGO_FAST_REQUIRE_EXTENSIONS="1")
    assert compiled == dict.fromkeys(_TWIN_SELECTORS, "compiled")
    # The pure twins are bundled too: the documented switch still works.
    pure = twins_of([str(binary)], CENTRIFUGO_FAST_NO_EXTENSIONS="1")
    assert pure == dict.fromkeys(_TWIN_SELECTORS, "pure")


def test_the_binary_serves_an_sdk_client(binary: Path) -> None:
    # The test run sets CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1: a fallback would stop the server.
    server = ServerProcess(merge(BASE_CONFIG, ADMIN_CONFIG), command=[str(binary)]).start()
    try:
        sdk_roundtrip(server)
        # the admin pages are package data inside the bundle
        assert "<html" in admin_page(server).lower()
        assert server.stop() == 0
    finally:
        server.close()


def test_the_binary_carries_the_redis_lua_scripts(binary: Path, redis: RedisProcess) -> None:
    config = merge(
        BASE_CONFIG,
        {
            "engine": {"type": "redis", "redis": {"address": [f"redis://{redis.address}"]}},
            "channel": {
                "without_namespace": {
                    "allow_subscribe_for_client": True,
                    "history_size": 10,
                    "history_ttl": "60s",
                }
            },
        },
    )
    server = ServerProcess(config, command=[str(binary)]).start()
    try:
        with cent_client(server) as cent:
            # publish + history append is one Lua script; history another
            cent.publish(PublishRequest(channel="news", data={"n": 1}))
            history = cent.history(HistoryRequest(channel="news", limit=10))
        assert [pub.data for pub in history.publications] == [{"n": 1}]
        assert server.stop() == 0
    finally:
        server.close()
