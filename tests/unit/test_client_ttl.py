"""TTLs in connect/subscribe/refresh results count whole seconds, as Centrifugo does."""

from __future__ import annotations

import pytest

from centrifugo_fast.core.client import _ttl


@pytest.mark.parametrize(
    ("expire_at", "now", "ttl"),
    [(100, 98.0, 2), (100, 98.9, 2), (100, 99.999, 1), (3700, 100.5, 3600)],
)
def test_ttl_is_whole_seconds_to_expiry(expire_at: int, now: float, ttl: int) -> None:
    # Rounding the remaining fraction down would give 1, 1, 0, 3599 here: a second short,
    # and 0 makes centrifuge-js send refresh commands in a tight loop.
    assert _ttl(expire_at, now) == ttl
