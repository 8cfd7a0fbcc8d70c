"""Admission of new connections: a token bucket for client.connection_rate_limit."""

from __future__ import annotations

import time
from collections.abc import Callable


class ConnectionRateLimiter:
    """Allows `rate` new connections per second, with bursts up to `rate`."""

    def __init__(self, rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = float(rate)
        self._clock = clock
        self._tokens = float(rate)
        self._stamp = clock()

    def allow(self) -> bool:
        """Take one token if there is one."""
        now = self._clock()
        self._tokens = min(self._rate, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
