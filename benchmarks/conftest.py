"""Benchmark fixtures: each twin fixture runs a benchmark once per implementation."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol, TypeVar

import pytest

from tests.twins import TWIN_IDS, load_twin

T = TypeVar("T")


class Benchmark(Protocol):
    """The part of pytest-benchmark's `benchmark` fixture we use (it ships no type hints)."""

    group: str | None

    def __call__(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...


@pytest.fixture(params=TWIN_IDS)
def wsframe(request: pytest.FixtureRequest) -> ModuleType:
    """The WebSocket frame parser twin under test ("c" compiled, "py" pure)."""
    return load_twin(
        request.param,
        "centrifugo_fast.protocol._wsframe_c",
        "centrifugo_fast.protocol._wsframe_py",
    )


@pytest.fixture(params=TWIN_IDS)
def fanout(request: pytest.FixtureRequest) -> ModuleType:
    """The fan-out twin under test ("c" compiled, "py" pure)."""
    return load_twin(
        request.param, "centrifugo_fast.core._fanout_c", "centrifugo_fast.core._fanout_py"
    )


@pytest.fixture(params=TWIN_IDS)
def history(request: pytest.FixtureRequest) -> ModuleType:
    """The history streams twin under test ("c" compiled, "py" pure)."""
    return load_twin(
        request.param,
        "centrifugo_fast.engine._history_c",
        "centrifugo_fast.engine._history_py",
    )
