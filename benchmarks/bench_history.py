"""History rings and the memory store (compiled vs pure), plus memory held per stream.

The memory test builds a HistoryStore of 100k channels x 10 publications (50-byte payloads)
and reports, per stream, what tracemalloc sees allocated by the store itself (rings, slot
lists, epochs, dict and timer heaps) and in total with the publications. Numbers are printed
(run with -s) and recorded in `benchmark.extra_info` (see --benchmark-json).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol

from benchmarks.conftest import Benchmark
from centrifugo_fast.engine.types import Publication


class PedanticBenchmark(Benchmark, Protocol):
    """The `benchmark` fixture's one-shot mode and its free-form record."""

    extra_info: dict[str, Any]

    def pedantic(self, target: Callable[[], Any], *, rounds: int, iterations: int) -> Any: ...


PAYLOAD = b'{"text":"' + b"x" * 39 + b'"}'
assert len(PAYLOAD) == 50


def _ring(history: ModuleType, count: int, size: int) -> Any:
    ring = history.HistoryRing(history.new_epoch())
    for _ in range(count):
        ring.append(Publication(data=PAYLOAD), size)
    return ring


def test_append_at_capacity(benchmark: Benchmark, history: ModuleType) -> None:
    """Append into a full ring of 100 (overwrites the oldest slot)."""
    benchmark.group = "history-append-size100"
    ring = _ring(history, 250, 100)
    pub = Publication(data=PAYLOAD)
    benchmark(ring.append, pub, 100)


def test_store_add(benchmark: Benchmark, history: ModuleType) -> None:
    """HistoryStore.add to an existing channel: lookup, both deadlines, append."""
    benchmark.group = "history-store-add"
    store = history.HistoryStore(time.monotonic, 3600.0)
    for i in range(1000):
        store.add(f"ch{i}", Publication(data=PAYLOAD), 100, 300.0, 0.0)
    pub = Publication(data=PAYLOAD)
    benchmark(store.add, "ch500", pub, 100, 300.0, 0.0)


def test_since_hit_limit10(benchmark: Benchmark, history: ModuleType) -> None:
    """Forward read of 10 from a retained offset (the ring has wrapped)."""
    benchmark.group = "history-since-hit-limit10"
    ring = _ring(history, 250, 100)
    result = benchmark(ring.since, 200, 10, False)
    assert [p.offset for p in result] == list(range(201, 211))


def test_since_all_from_oldest(benchmark: Benchmark, history: ModuleType) -> None:
    """Everything retained (100), from the oldest."""
    benchmark.group = "history-since-all100"
    ring = _ring(history, 250, 100)
    result = benchmark(ring.since, 0, -1, False)
    assert len(result) == 100 and result[0].offset == 151


def test_reverse_limit10(benchmark: Benchmark, history: ModuleType) -> None:
    """The newest 10, newest first."""
    benchmark.group = "history-reverse-limit10"
    ring = _ring(history, 250, 100)
    result = benchmark(ring.since, 0, 10, True)
    assert [p.offset for p in result] == list(range(250, 240, -1))


def test_store_get_recovery(benchmark: Benchmark, history: ModuleType) -> None:
    """HistoryStore.get as a recovering subscriber: since a position 5 behind the top."""
    benchmark.group = "history-store-get-since"
    store = history.HistoryStore(time.monotonic, 3600.0)
    for _ in range(249):
        store.add("ch", Publication(data=PAYLOAD), 100, 300.0, 0.0)
    pos = store.add("ch", Publication(data=PAYLOAD), 100, 300.0, 0.0)
    since = pos._replace(offset=pos.offset - 5)
    pubs, _ = benchmark(store.get, "ch", since, 300, False, 0.0)
    assert len(pubs) == 5


STREAMS = 100_000
PER_STREAM = 10


def test_memory_100k_streams(benchmark: PedanticBenchmark, history: ModuleType) -> None:
    """Bytes per stream for 100k channels x 10 publications with 50-byte payloads."""
    benchmark.group = "history-memory-100kx10"
    channels = [f"channel:{i:06d}" for i in range(STREAMS)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        pubs = [
            [Publication(data=b"%050d" % (i * PER_STREAM + j)) for j in range(PER_STREAM)]
            for i in range(STREAMS)
        ]
        pubs_bytes = tracemalloc.get_traced_memory()[0] - before
        holder: list[Any] = []

        def build() -> None:
            store = history.HistoryStore(time.monotonic, 3600.0)
            for j in range(PER_STREAM):
                for i, channel in enumerate(channels):
                    store.add(channel, pubs[i][j], 10, 300.0, 0.0)
            holder.append(store)

        start = tracemalloc.get_traced_memory()[0]
        benchmark.pedantic(build, rounds=1, iterations=1)
        store_bytes = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert len(holder[0]) == STREAMS
    # the list-of-lists holding the publications is not part of a stream's cost
    pubs_bytes -= STREAMS * (56 + 8 * PER_STREAM) + 56 + 8 * STREAMS
    overhead = store_bytes / STREAMS
    total = (store_bytes + pubs_bytes) / STREAMS
    benchmark.extra_info["store_bytes_per_stream"] = round(overhead)
    benchmark.extra_info["total_bytes_per_stream"] = round(total)
    print(
        f"\n{history.__name__}: {STREAMS} streams x {PER_STREAM} pubs: "
        f"store {overhead:.0f} B/stream, with publications {total:.0f} B/stream"
    )
