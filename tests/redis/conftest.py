"""Fixtures: real Redis processes (standalone, shards, Sentinel, Cluster) on free ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.redis.redisproc import RedisProcess, require_redis
from tests.wsclient import close_all


@pytest.fixture
def make_redis() -> Iterator[Callable[..., RedisProcess]]:
    """Start redis-server processes (extra arguments are passed to redis-server)."""
    require_redis()
    started: list[RedisProcess] = []

    def start(*args: str, port: int | None = None) -> RedisProcess:
        proc = RedisProcess(*args, port=port).start()
        started.append(proc)
        return proc

    yield start
    close_all()
    for proc in started:
        proc.close()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisProcess]:
    """One redis-server shared by the tests of a module."""
    require_redis()
    proc = RedisProcess().start()
    yield proc
    proc.close()
