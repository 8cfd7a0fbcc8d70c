"""Fixtures of the real-SDK tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.sdk.common import cent_client
from tests.serverproc import ServerProcess


@pytest.fixture
def cent(server: ServerProcess) -> Iterator[Any]:
    """A cent 5.x sync client for the module's server, closed after the test."""
    with cent_client(server) as client:
        yield client
