"""Fixtures of the real-SDK tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.sdk.common import cent_client
from tests.sdk.jsrun import node_path
from tests.serverproc import ServerProcess


@pytest.fixture
def cent(server: ServerProcess) -> Iterator[Any]:
    """A cent 5.x sync client for the module's server, closed after the test."""
    with cent_client(server) as client:
        yield client


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, once the SDK's npm packages are installed."""
    return node_path()
