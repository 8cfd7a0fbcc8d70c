"""History twins: ring semantics (engine.md §1.2, client-protocol.md §3.6) and store expiry."""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from centrifugo_fast.engine.types import Publication, StreamPosition

# A fixture is a module, so sharing it between generated examples is safe.
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pub(n: int = 0) -> Publication:
    return Publication(data=b'{"n":%d}' % n)


def offsets(pubs: list[Publication]) -> list[int]:
    return [p.offset for p in pubs]


def ring_with(history: ModuleType, count: int, size: int) -> Any:
    ring = history.HistoryRing("epochAAA")
    for i in range(count):
        ring.append(pub(i), size)
    return ring


# ---- ring ----


def test_new_ring_is_empty(history: ModuleType) -> None:
    ring = history.HistoryRing("abcdefgh")
    assert ring.epoch == "abcdefgh" and ring.top_offset == 0 and len(ring) == 0
    assert ring.latest() is None
    assert ring.since(0, -1, False) == [] and ring.since(0, -1, True) == []


def test_append_stamps_offset_and_epoch(history: ModuleType) -> None:
    ring = history.HistoryRing("abcdefgh")
    p = pub()
    assert ring.append(p, 10) == 1
    assert (p.offset, p.epoch) == (1, "abcdefgh")
    assert ring.append(pub(), 10) == 2 and ring.top_offset == 2
    assert ring.latest() is not None and ring.latest().offset == 2


def test_trim_by_size_keeps_newest(history: ModuleType) -> None:
    ring = ring_with(history, 15, 10)
    assert len(ring) == 10 and ring.top_offset == 15
    assert offsets(ring.since(0, -1, False)) == list(range(6, 16))
    assert ring.latest().offset == 15


# 15 publications into size 10: offsets 6..15 retained, the ring wrapped (head != 0).
SINCE_CASES = [
    # (offset, limit, reverse, expected offsets)
    (0, -1, False, list(range(6, 16))),
    (0, 3, False, [6, 7, 8]),
    (0, 0, False, []),
    (0, 100, False, list(range(6, 16))),
    (0, -1, True, list(range(15, 5, -1))),
    (0, 3, True, [15, 14, 13]),
    (0, 0, True, []),
    (8, -1, False, list(range(9, 16))),
    (8, 2, False, [9, 10]),
    (12, 100, False, [13, 14, 15]),
    (14, -1, False, [15]),
    (15, -1, False, []),  # at the top: nothing new
    (20, -1, False, []),  # beyond the top
    (2, -1, False, list(range(6, 16))),  # older than retained: from the oldest
    (2, 4, False, [6, 7, 8, 9]),
    (5, -1, False, list(range(6, 16))),
    (8, -1, True, [7, 6]),
    (8, 1, True, [7]),
    (7, -1, True, [6]),
    (6, -1, True, []),  # 5 is not retained
    (3, -1, True, []),
    (16, -1, True, list(range(15, 5, -1))),
    (16, 2, True, [15, 14]),
    (15, 0, True, []),
    (17, -1, True, []),  # 16 does not exist
    (12, -1, True, [11, 10, 9, 8, 7, 6]),
]


@pytest.mark.parametrize(("offset", "limit", "reverse", "expected"), SINCE_CASES)
def test_since(
    history: ModuleType, offset: int, limit: int, reverse: bool, expected: list[int]
) -> None:
    ring = ring_with(history, 15, 10)
    assert offsets(ring.since(offset, limit, reverse)) == expected


def test_since_on_unwrapped_ring(history: ModuleType) -> None:
    ring = ring_with(history, 4, 10)
    assert offsets(ring.since(0, -1, False)) == [1, 2, 3, 4]
    assert offsets(ring.since(1, 2, False)) == [2, 3]
    assert offsets(ring.since(4, -1, True)) == [3, 2, 1]
    assert offsets(ring.since(1, -1, True)) == []


def test_since_returns_a_new_list(history: ModuleType) -> None:
    ring = ring_with(history, 10, 10)
    got = ring.since(0, -1, False)
    got.clear()
    assert len(ring.since(0, -1, False)) == 10


def test_resize_larger_with_wrapped_items(history: ModuleType) -> None:
    ring = ring_with(history, 15, 10)  # 6..15, wrapped
    ring.append(pub(), 20)
    assert offsets(ring.since(0, -1, False)) == list(range(6, 17))
    for _ in range(20):
        ring.append(pub(), 20)
    assert len(ring) == 20 and offsets(ring.since(0, -1, False)) == list(range(17, 37))
    assert offsets(ring.since(30, 3, True)) == [29, 28, 27]


def test_resize_smaller_keeps_newest(history: ModuleType) -> None:
    ring = ring_with(history, 15, 10)
    ring.append(pub(), 3)
    assert ring.top_offset == 16 and offsets(ring.since(0, -1, False)) == [14, 15, 16]
    ring.append(pub(), 3)
    assert offsets(ring.since(0, -1, False)) == [15, 16, 17]
    assert ring.latest().offset == 17


def test_size_zero_retains_nothing_but_counts(history: ModuleType) -> None:
    ring = ring_with(history, 5, 10)
    assert ring.append(pub(), 0) == 6
    assert len(ring) == 0 and ring.latest() is None
    assert ring.append(pub(), 2) == 7 and offsets(ring.since(0, -1, False)) == [7]


def test_clear_keeps_top_and_epoch(history: ModuleType) -> None:
    ring = ring_with(history, 15, 10)
    ring.clear()
    assert len(ring) == 0 and ring.top_offset == 15 and ring.epoch == "epochAAA"
    assert ring.since(0, -1, False) == [] and ring.latest() is None
    p = pub()
    assert ring.append(p, 10) == 16 and p.epoch == "epochAAA"
    assert offsets(ring.since(0, -1, False)) == [16]
    assert offsets(ring.since(10, -1, False)) == [16]


def test_epoch_format(history: ModuleType) -> None:
    epochs = {history.new_epoch() for _ in range(200)}
    assert len(epochs) == 200
    assert all(re.fullmatch(r"[a-zA-Z]{8}", e) for e in epochs)


# ---- ring against a plain-list model ----

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 12)),
        st.tuples(st.just("since"), st.integers(-2, 60), st.integers(-2, 14), st.booleans()),
        st.tuples(st.just("clear")),
    ),
    max_size=80,
)


def model_since(
    items: list[Publication], top: int, offset: int, limit: int, reverse: bool
) -> list[Publication]:
    if limit == 0 or not items:
        return []
    if reverse:
        start = top if offset <= 0 else offset - 1
        if start not in [p.offset for p in items]:
            return []
        selected = [p for p in reversed(items) if p.offset <= start]
    else:
        start = max(offset + 1, items[0].offset)
        selected = [p for p in items if p.offset >= start]
    return selected[:limit] if limit > 0 else selected


@PROPERTY
@given(ops=OPS)
def test_ring_matches_list_model(history: ModuleType, ops: list[tuple[Any, ...]]) -> None:
    ring = history.HistoryRing("modelEpo")
    items: list[Publication] = []
    top = 0
    for op in ops:
        if op[0] == "append":
            size = op[1]
            p = pub(top)
            top += 1
            assert ring.append(p, size) == top
            items.append(p)
            items = items[-size:] if size > 0 else []
        elif op[0] == "since":
            _, offset, limit, reverse = op
            got = ring.since(offset, limit, reverse)
            want = model_since(items, top, offset, limit, reverse)
            assert [id(p) for p in got] == [id(p) for p in want], (offset, limit, reverse)
        else:
            ring.clear()
            items = []
        assert len(ring) == len(items) and ring.top_offset == top
        latest = ring.latest()
        assert latest is (items[-1] if items else None)
        assert [id(p) for p in ring.since(0, -1, False)] == [id(p) for p in items]


# ---- store ----


def make_store(history: ModuleType, default_meta_ttl: float = 0.0) -> tuple[Any, FakeClock]:
    clock = FakeClock()
    return history.HistoryStore(clock, default_meta_ttl), clock


def test_add_creates_stream(history: ModuleType) -> None:
    store, _ = make_store(history)
    p = pub()
    pos = store.add("ch", p, 10, 60, 0)
    assert isinstance(pos, StreamPosition)
    assert pos.offset == 1 and re.fullmatch(r"[a-zA-Z]{8}", pos.epoch)
    assert (p.offset, p.epoch) == (1, pos.epoch)
    assert store.add("ch", pub(), 10, 60, 0) == StreamPosition(2, pos.epoch)
    assert store.add("other", pub(), 10, 60, 0).offset == 1
    assert len(store) == 2


def test_get_missing_creates_empty_stream(history: ModuleType) -> None:
    store, _ = make_store(history)
    pubs, pos = store.get("ch", None, -1, False, 0)
    assert pubs == [] and pos.offset == 0 and re.fullmatch(r"[a-zA-Z]{8}", pos.epoch)
    assert len(store) == 1
    assert store.add("ch", pub(), 10, 60, 0) == StreamPosition(1, pos.epoch)


def test_get_semantics(history: ModuleType) -> None:
    store, _ = make_store(history)
    epoch = store.add("ch", pub(), 10, 60, 0).epoch
    for i in range(14):
        store.add("ch", pub(i), 10, 60, 0)
    current = StreamPosition(15, epoch)

    def get(since: StreamPosition | None, limit: int, reverse: bool = False) -> list[int]:
        pubs, position = store.get("ch", since, limit, reverse, 0)
        assert position == current  # always the current top
        return offsets(pubs)

    assert get(None, 0) == [] and get(None, 0, True) == []
    assert get(None, -1) == list(range(6, 16))
    assert get(None, 2) == [6, 7]
    assert get(None, 2, True) == [15, 14]
    assert get(StreamPosition(15, epoch), -1) == []
    assert get(StreamPosition(15, ""), -1) == []
    assert get(StreamPosition(15, "otherEpo"), -1) == []  # the caller answers 112
    assert get(StreamPosition(12, epoch), -1) == [13, 14, 15]
    assert get(StreamPosition(12, "otherEpo"), 1) == [13]  # epochs are not checked here
    assert get(StreamPosition(1, epoch), 3) == [6, 7, 8]  # gap: from the oldest
    assert get(StreamPosition(12, epoch), 2, True) == [11, 10]
    assert get(StreamPosition(5, epoch), -1, True) == []
    assert get(StreamPosition(0, epoch), 2, True) == [15, 14]  # not validated (caller: 107)
    huge = 2**64 - 1  # uint64 from a client must not overflow the compiled twin
    assert get(StreamPosition(huge, epoch), -1) == []
    assert get(StreamPosition(huge, epoch), -1, True) == []
    assert get(StreamPosition(-(2**70), epoch), 2) == [6, 7]


def test_remove_history_keeps_position(history: ModuleType) -> None:
    store, _ = make_store(history)
    store.add("ch", pub(), 10, 60, 0)
    pos = store.add("ch", pub(), 10, 60, 0)
    store.remove_history("ch")
    store.remove_history("missing")
    assert store.get("ch", None, -1, False, 0) == ([], pos)
    assert len(store) == 1
    assert store.add("ch", pub(), 10, 60, 0) == StreamPosition(3, pos.epoch)


def test_ttl_expiry_clears_items_but_keeps_position(history: ModuleType) -> None:
    store, clock = make_store(history)
    store.add("ch", pub(), 10, 10, 0)  # ttl deadline 1010
    clock.now += 5
    pos = store.add("ch", pub(), 10, 10, 0)  # extended to 1015
    clock.now = 1011
    assert store.expire() == 0  # the queued entry is re-queued, nothing cleared
    assert offsets(store.get("ch", None, -1, False, 0)[0]) == [1, 2]
    clock.now = 1015
    assert store.expire() == 1
    assert store.get("ch", None, -1, False, 0) == ([], pos)
    assert store.get("ch", StreamPosition(2, pos.epoch), -1, False, 0) == ([], pos)
    assert len(store) == 1
    clock.now = 5000
    assert store.expire() == 0  # nothing left to do
    assert store.add("ch", pub(), 10, 10, 0) == StreamPosition(3, pos.epoch)


def test_ttl_shortened_takes_effect(history: ModuleType) -> None:
    store, clock = make_store(history)
    store.add("ch", pub(), 10, 100, 0)
    store.add("ch", pub(), 10, 10, 0)
    clock.now += 10
    assert store.expire() == 1 and store.get("ch", None, -1, False, 0)[0] == []
    clock.now += 100
    assert store.expire() == 0  # the old (later) entry is stale


def test_ttl_zero_never_clears(history: ModuleType) -> None:
    store, clock = make_store(history)
    store.add("ch", pub(), 10, 10, 0)
    store.add("ch", pub(), 10, 0, 0)  # history_ttl off: cancels the pending clear
    clock.now += 10**6
    assert store.expire() == 0
    assert len(store.get("ch", None, -1, False, 0)[0]) == 2


def test_meta_expiry_deletes_stream(history: ModuleType) -> None:
    store, clock = make_store(history)
    old = store.add("ch", pub(), 10, 10, 100)
    clock.now += 99
    assert store.expire() == 1  # history_ttl clear only
    assert len(store) == 1
    clock.now += 1
    assert store.expire() == 1 and len(store) == 0
    pubs, pos = store.get("ch", None, -1, False, 100)
    assert pubs == [] and pos.offset == 0 and pos.epoch != old.epoch
    new = store.add("ch", pub(), 10, 10, 100)
    assert new == StreamPosition(1, pos.epoch)


def test_meta_expiry_then_add_starts_new_epoch(history: ModuleType) -> None:
    store, clock = make_store(history)
    old = store.add("ch", pub(), 10, 10, 100)
    clock.now += 100
    assert store.expire() == 2  # cleared and removed in one pass
    new = store.add("ch", pub(), 10, 10, 100)
    assert new.offset == 1 and new.epoch != old.epoch


def test_read_refreshes_meta_deadline(history: ModuleType) -> None:
    store, clock = make_store(history)
    pos = store.add("ch", pub(), 10, 1000, 100)  # remove at 1100
    clock.now = 1050
    store.get("ch", None, 0, False, 100)  # remove at 1150
    clock.now = 1101
    assert store.expire() == 0 and len(store) == 1
    assert store.get("ch", None, -1, False, 100)[1] == pos  # remove at 1201
    clock.now = 1201
    assert store.expire() == 1 and len(store) == 0


def test_default_meta_ttl(history: ModuleType) -> None:
    store, clock = make_store(history, default_meta_ttl=50)
    store.add("a", pub(), 10, 10, 0)  # default 50
    store.get("b", None, 0, False, 0)  # a read-only stream also expires
    store.add("c", pub(), 10, 10, 500)
    clock.now += 50
    store.expire()
    assert len(store) == 1
    clock.now += 450
    store.expire()
    assert len(store) == 0


def test_meta_zero_and_default_zero_never_removed(history: ModuleType) -> None:
    store, clock = make_store(history, default_meta_ttl=0)
    store.add("ch", pub(), 10, 10, 0)
    store.get("read-only", None, 0, False, 0)
    clock.now += 10**7
    assert store.expire() == 1  # only the history_ttl clear
    assert len(store) == 2 and store.pending_deadlines() == 0


def test_idempotency_cache(history: ModuleType) -> None:
    store, clock = make_store(history)
    position = StreamPosition(7, "abcdefgh")
    assert store.idempotent_get("ch", "k") is None
    store.idempotent_put("ch", "k", position, 300)
    assert store.idempotent_get("ch", "k") == position
    assert store.idempotent_get("ch", "other") is None
    assert store.idempotent_get("ch_k", "") is None  # keys do not collide
    store.idempotent_put("ch", "none", position, 0)  # ttl 0: not cached
    assert store.idempotent_get("ch", "none") is None
    clock.now += 200
    store.idempotent_put("ch", "k", StreamPosition(8, "abcdefgh"), 300)  # until +500
    clock.now += 150
    assert store.expire() == 0  # re-queued
    assert store.idempotent_get("ch", "k") == StreamPosition(8, "abcdefgh")
    clock.now += 150
    assert store.idempotent_get("ch", "k") is None  # expired before expire() runs
    assert store.expire() == 1
    assert store.pending_deadlines() == 0


def test_idempotency_shortened_ttl(history: ModuleType) -> None:
    store, clock = make_store(history)
    store.idempotent_put("ch", "k", StreamPosition(1, "e"), 300)
    store.idempotent_put("ch", "k", StreamPosition(1, "e"), 10)
    clock.now += 10
    assert store.idempotent_get("ch", "k") is None
    assert store.expire() == 1
    clock.now += 300
    assert store.expire() == 0 and store.pending_deadlines() == 0


def test_heaps_stay_small_under_one_hot_channel(history: ModuleType) -> None:
    store, clock = make_store(history, default_meta_ttl=3600)
    for i in range(100_000):
        clock.now += 0.001
        store.add("hot", pub(i), 100, 300, 0)
        store.idempotent_put("hot", "same-key", StreamPosition(i, "e"), 300)
        if i % 1000 == 0:
            store.expire()
    assert store.pending_deadlines() <= 3
    pubs, pos = store.get("hot", None, -1, False, 0)
    assert len(pubs) == 100 and pos.offset == 100_000


def test_heaps_bounded_by_streams(history: ModuleType) -> None:
    store, clock = make_store(history, default_meta_ttl=60)
    for round_ in range(50):
        for ch in range(200):
            store.add(f"ch{ch}", pub(round_), 5, 30, 0)
            store.get(f"ch{ch}", None, 1, True, 0)
        clock.now += 1
        store.expire()
    # one ttl and one meta entry per stream, no more
    assert store.pending_deadlines() <= 2 * 200
    clock.now += 60
    assert store.expire() == 400 and len(store) == 0
    assert store.pending_deadlines() == 0


def test_unread_stream_disappears(history: ModuleType) -> None:
    store, clock = make_store(history, default_meta_ttl=10)
    for i in range(1000):
        store.add(f"once-{i}", pub(), 10, 5, 0)
    for _ in range(10):
        clock.now += 1
        store.expire()
    assert len(store) == 0 and store.pending_deadlines() == 0


# ---- store timers against a model ----

STORE_OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"),
            st.integers(0, 3),  # channel
            st.integers(0, 4),  # size
            st.integers(0, 30),  # ttl (0 = off)
            st.integers(0, 60),  # meta ttl (0 = default)
        ),
        st.tuples(st.just("get"), st.integers(0, 3), st.integers(0, 60)),
        st.tuples(st.just("remove"), st.integers(0, 3)),
        st.tuples(st.just("tick"), st.integers(0, 40)),
    ),
    max_size=60,
)


@PROPERTY
@given(ops=STORE_OPS, default_meta=st.sampled_from([0, 25]))
def test_store_timers_match_model(
    history: ModuleType, ops: list[tuple[Any, ...]], default_meta: int
) -> None:
    clock = FakeClock(0.0)
    store = history.HistoryStore(clock, float(default_meta))
    # channel -> [top, epoch, retained, ttl_due, meta_due]
    model: dict[str, list[Any]] = {}

    def touch(ch: str, meta: int) -> None:
        effective = meta if meta > 0 else default_meta
        model[ch][4] = clock.now + effective if effective > 0 else None

    def ensure(ch: str, epoch: str) -> None:
        if ch in model:
            assert model[ch][1] == epoch
        else:
            model[ch] = [0, epoch, 0, None, None]

    for op in ops:
        if op[0] == "add":
            _, c, size, ttl, meta = op
            ch = f"ch{c}"
            pos = store.add(ch, pub(), size, float(ttl), float(meta))
            existed = ch in model
            ensure(ch, pos.epoch)
            m = model[ch]
            m[0] += 1
            m[2] = min(m[2] + 1, size)
            m[3] = clock.now + ttl if ttl > 0 else None
            touch(ch, meta)
            assert pos.offset == m[0] and (existed or pos.offset == 1)
        elif op[0] == "get":
            _, c, meta = op
            ch = f"ch{c}"
            pubs, pos = store.get(ch, None, -1, False, float(meta))
            ensure(ch, pos.epoch)
            touch(ch, meta)
            assert pos.offset == model[ch][0] and len(pubs) == model[ch][2]
        elif op[0] == "remove":
            ch = f"ch{op[1]}"
            store.remove_history(ch)
            if ch in model:
                model[ch][2] = 0
        else:
            clock.now += op[1]
            actions = 0
            for m in model.values():
                if m[3] is not None and m[3] <= clock.now:
                    m[2], m[3] = 0, None
                    actions += 1
            for ch, m in list(model.items()):
                if m[4] is not None and m[4] <= clock.now:
                    del model[ch]
                    actions += 1
            assert store.expire() == actions
        assert len(store) == len(model)
