"""Shared fixtures: each twin fixture runs a test once per implementation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.serverproc import BASE_CONFIG, ServerProcess, merge, running_server
from tests.twins import TWIN_IDS, load_twin
from tests.wsclient import close_all


@pytest.fixture(autouse=True)
def _close_raw_websockets() -> Iterator[None]:
    yield
    close_all()


@pytest.fixture(params=TWIN_IDS)
def wsframe(request: pytest.FixtureRequest) -> ModuleType:
    """The WebSocket frame parser twin under test."""
    return load_twin(
        request.param,
        "centrifugo_fast.protocol._wsframe_c",
        "centrifugo_fast.protocol._wsframe_py",
    )


@pytest.fixture(params=TWIN_IDS)
def fanout(request: pytest.FixtureRequest) -> ModuleType:
    """The fan-out twin under test."""
    return load_twin(
        request.param, "centrifugo_fast.core._fanout_c", "centrifugo_fast.core._fanout_py"
    )


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """A server with the base test config, shared by the tests of one module."""
    yield from running_server()


@pytest.fixture
def make_server() -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with config changes merged into the base test config."""
    started: list[ServerProcess] = []

    def start(extra: dict[str, Any] | None = None) -> ServerProcess:
        proc = ServerProcess(merge(BASE_CONFIG, extra or {})).start()
        started.append(proc)
        return proc

    yield start
    close_all()  # clients first, so the servers' graceful shutdown has nobody to wait for
    for proc in started:
        proc.close()


@pytest.fixture(params=TWIN_IDS)
def history(request: pytest.FixtureRequest) -> ModuleType:
    """The history streams twin under test."""
    return load_twin(
        request.param,
        "centrifugo_fast.engine._history_c",
        "centrifugo_fast.engine._history_py",
    )
