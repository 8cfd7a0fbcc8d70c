"""Fossil delta encoder and decoder on publication-sized JSON documents (one group per case)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import pytest

from centrifugo_fast.protocol.fossil import apply_delta, create_delta

T = TypeVar("T")


class Benchmark(Protocol):
    """The part of pytest-benchmark's `benchmark` fixture used here."""

    group: str | None
    extra_info: dict[str, Any]

    def __call__(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T: ...


def document(size: int, seed: int) -> dict[str, Any]:
    """A live-score style JSON document of about `size` bytes."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    doc: dict[str, Any] = {"match": "home-away", "minute": 10, "score": [1, 0], "events": events}
    while len(json.dumps(doc)) < size:
        events.append(
            {
                "id": len(events),
                "kind": rng.choice(["pass", "shot", "foul", "corner", "offside"]),
                "player": f"player-{rng.randrange(1000)}",
                "x": round(rng.random() * 100, 2),
                "y": round(rng.random() * 100, 2),
            }
        )
    return doc


def small_change(size: int) -> tuple[bytes, bytes]:
    """A document and the next version: the minute ticks and one event in the middle moves."""
    doc = document(size, seed=1)
    source = json.dumps(doc).encode()
    doc["minute"] = 11
    doc["events"][len(doc["events"]) // 2]["x"] = 12.5
    return source, json.dumps(doc).encode()


CASES: dict[str, tuple[bytes, bytes]] = {
    "1k-small-change": small_change(1024),
    "16k-small-change": small_change(16384),
    "1k-different": (
        json.dumps(document(1024, seed=1)).encode(),
        json.dumps(document(1024, seed=2)).encode(),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_create_delta(benchmark: Benchmark, case: str) -> None:
    source, target = CASES[case]
    benchmark.group = f"fossil-{case}"
    delta = benchmark(create_delta, source, target)
    benchmark.extra_info.update(target_bytes=len(target), delta_bytes=len(delta))
    assert apply_delta(source, delta) == target


@pytest.mark.parametrize("case", list(CASES))
def test_create_delta_json_safe(benchmark: Benchmark, case: str) -> None:
    source, target = CASES[case]
    benchmark.group = f"fossil-{case}"
    delta = benchmark(create_delta, source, target, json_safe=True)
    benchmark.extra_info.update(target_bytes=len(target), delta_bytes=len(delta))
    assert apply_delta(source, delta) == target


@pytest.mark.parametrize("case", list(CASES))
def test_apply_delta(benchmark: Benchmark, case: str) -> None:
    source, target = CASES[case]
    delta = create_delta(source, target)
    benchmark.group = f"fossil-{case}"
    benchmark.extra_info.update(target_bytes=len(target), delta_bytes=len(delta))
    assert benchmark(apply_delta, source, delta) == target
