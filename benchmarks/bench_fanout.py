"""Fan-out: one publication to N subscribers, then the per-turn flush (compiled vs pure).

The transport is a no-op object, so this measures our per-subscriber cost (enqueue, the
flush bookkeeping), not the kernel's send cost (design.md §4 measures that separately).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from benchmarks.conftest import Benchmark

FRAME = b"\x81\x40" + b'{"push":{"channel":"news","pub":{"data":{"text":"x"}}}}'.ljust(64)


class NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class ManualLoop:
    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []

    def call_soon(self, cb: Callable[[], None]) -> None:
        self.callbacks.append(cb)

    def run(self) -> None:
        callbacks, self.callbacks = self.callbacks, []
        for cb in callbacks:
            cb()


def _subscribers(fanout: ModuleType, n: int, keys: int = 1) -> tuple[dict[str, Any], ManualLoop]:
    loop = ManualLoop()
    scheduler = fanout.FlushScheduler(loop.call_soon)
    transport = NullTransport()
    subs = {
        f"client-{i}": fanout.Writer(transport, scheduler, 1 << 20, i % keys, lambda r: None)
        for i in range(n)
    }
    return subs, loop


@pytest.mark.parametrize("n", [1, 100, 1000, 10000])
def test_broadcast_and_flush(benchmark: Benchmark, fanout: ModuleType, n: int) -> None:
    """One publication to n subscribers of one encoding, then the loop turn's flush."""
    subs, loop = _subscribers(fanout, n)
    benchmark.group = f"fanout-{n}"

    def publish() -> None:
        fanout.broadcast(subs.values(), fanout.PreparedPush(lambda key: FRAME))
        loop.run()

    benchmark(publish)


def test_broadcast_10_publications_one_flush(benchmark: Benchmark, fanout: ModuleType) -> None:
    """Ten publications to 1000 subscribers coalesced into one flush per connection."""
    subs, loop = _subscribers(fanout, 1000)
    benchmark.group = "fanout-1000x10-coalesced"

    def publish() -> None:
        for _ in range(10):
            fanout.broadcast(subs.values(), fanout.PreparedPush(lambda key: FRAME))
        loop.run()

    benchmark(publish)


def test_broadcast_mixed_encodings(benchmark: Benchmark, fanout: ModuleType) -> None:
    """1000 subscribers alternating between two encodings (two encodes per publication)."""
    subs, loop = _subscribers(fanout, 1000, keys=2)
    benchmark.group = "fanout-1000-two-encodings"

    def publish() -> None:
        fanout.broadcast(subs.values(), fanout.PreparedPush(lambda key: FRAME))
        loop.run()

    benchmark(publish)
