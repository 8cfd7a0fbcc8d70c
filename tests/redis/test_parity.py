"""History, recovery, positioning, presence and join/leave: the memory engine's server tests
(tests/server/test_history_recovery.py) run unchanged against a server on Redis (done-when (e))."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.redis.redisproc import RedisProcess
from tests.server import test_history_recovery as memory_suite
from tests.serverproc import BASE_CONFIG, ServerProcess, merge
from tests.wsclient import close_all

pytestmark = pytest.mark.slow

for _name in dir(memory_suite):
    if _name.startswith("test_"):
        globals()[_name] = getattr(memory_suite, _name)


def _on_redis(redis: RedisProcess, extra: dict[str, Any], prefix: str) -> dict[str, Any]:
    engine = {"engine": {"type": "redis", "redis": {"address": [redis.address], "prefix": prefix}}}
    return merge(merge(BASE_CONFIG, extra), engine)


@pytest.fixture(scope="module")
def srv(redis_server: RedisProcess) -> Iterator[ServerProcess]:
    server = ServerProcess(_on_redis(redis_server, memory_suite.CONFIG, "parity")).start()
    yield server
    server.close()


@pytest.fixture
def make_server(redis_server: RedisProcess) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(extra: dict[str, Any] | None = None) -> ServerProcess:
        prefix = f"parity{len(started)}x"
        proc = ServerProcess(_on_redis(redis_server, extra or {}, prefix)).start()
        started.append(proc)
        return proc

    yield start
    close_all()
    for proc in started:
        proc.close()
