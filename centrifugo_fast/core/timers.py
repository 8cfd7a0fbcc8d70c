"""One shared, coarse timer wheel for every connection's deadlines.

design.md §5: no timer or task per connection. Pings, pong deadlines, stale checks and
expiry checks are callbacks in buckets of `tick` seconds, fired by a single loop callback.
Entries cannot be cancelled: a callback re-checks its owner's state when it fires.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any, Protocol


class _Loop(Protocol):
    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Any: ...


class TimerWheel:
    """Schedules callbacks at coarse deadlines with one event-loop timer in total."""

    def __init__(self, loop: _Loop, tick: float = 0.1) -> None:
        self._loop = loop
        self._tick = tick
        self._buckets: dict[int, list[Callable[[], None]]] = {}
        self._heap: list[int] = []
        self._armed_index: int | None = None
        self._handle: Any = None

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def time(self) -> float:
        """The loop's clock."""
        return self._loop.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> None:
        """Run `callback` at `when` (loop time), rounded up to the next tick."""
        index = math.ceil(when / self._tick)
        bucket = self._buckets.get(index)
        if bucket is None:
            self._buckets[index] = [callback]
            heapq.heappush(self._heap, index)
            if self._armed_index is None or index < self._armed_index:
                self._arm(index)
        else:
            bucket.append(callback)

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run `callback` after `delay` seconds (rounded up to the next tick)."""
        self.call_at(self._loop.time() + delay, callback)

    def _arm(self, index: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_index = index
        self._handle = self._loop.call_at(index * self._tick, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_index = None
        now_index = math.floor(self._loop.time() / self._tick)
        heap = self._heap
        while heap and heap[0] <= now_index:
            index = heapq.heappop(heap)
            for callback in self._buckets.pop(index, ()):
                callback()
        self._arm_earliest()

    def _arm_earliest(self) -> None:
        # Callbacks may have armed the loop timer for their own (later) deadline while
        # firing: the earliest bucket decides.
        heap = self._heap
        if heap and (self._armed_index is None or heap[0] < self._armed_index):
            self._arm(heap[0])

    def close(self) -> None:
        """Drop every pending callback."""
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._armed_index = None
        self._buckets.clear()
        self._heap.clear()
