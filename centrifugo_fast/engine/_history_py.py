# cython: annotation_typing=False
"""Memory history streams: per-channel rings of publications and their expiry timers.

This one source is the pure twin and, compiled by Cython with `_history_c.pxd`, the compiled
twin `_history_c` (design.md §3, §10 "Where the history ring lives"). Semantics follow
engine.md §1.2 and client-protocol.md §3.6/§7.

A `HistoryRing` is one channel's stream. Its retained publications live in one Python list
used as a circular array: while the ring fills, the list grows by `append` and `_head` is 0;
once it holds `size` items, a new publication overwrites the oldest slot and `_head` moves.
So `len(_slots)` is always the number of retained items, the item with offset `o` sits at
`(_head + o - oldest) % len(_slots)`, and a read is one or two list slices.

A `HistoryStore` holds every stream of a node plus two timers per stream (engine.md §1.2):
  * history_ttl: when due, the ring is cleared but keeps `top_offset` and `epoch`;
  * meta TTL: when due, the stream is deleted (the next add/get starts a new epoch at 0).
Each timer is a min-heap of `(deadline, channel)` with at most one live entry per channel.
The current deadline lives on the ring (`_ttl_due`, `_meta_due`); `_ttl_queued` and
`_meta_queued` are the deadline of the channel's live heap entry. A later deadline only
updates `*_due` (no push); when the queued entry pops early it is pushed again at `*_due`
(lazy re-queue). An earlier deadline pushes a new entry; the old one no longer matches
`*_queued` and is dropped when it pops. So the heaps hold about one entry per stream however
often a channel is published to, and every operation is O(log n).
"""

from __future__ import annotations

import heapq
import secrets
from collections.abc import Callable

from .types import Publication, StreamPosition

_EPOCH_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_EPOCH_LENGTH = 8

#: "no deadline"; clocks are monotonic seconds, never negative.
_NONE = -1.0

_heappush = heapq.heappush
_heappop = heapq.heappop
_new_tuple = tuple.__new__


def _position(offset: int, epoch: str) -> StreamPosition:
    """StreamPosition without the NamedTuple's Python-level __new__ (about 3x cheaper)."""
    return _new_tuple(StreamPosition, (offset, epoch))


def new_epoch() -> str:
    """A fresh stream epoch: 8 characters from [a-zA-Z], from a cryptographic RNG."""
    choice = secrets.choice
    return "".join([choice(_EPOCH_ALPHABET) for _ in range(_EPOCH_LENGTH)])


class HistoryRing:
    """One channel's history stream: the newest `size` publications, offsets and epoch."""

    __slots__ = (
        "epoch",
        "top_offset",
        "_slots",
        "_head",
        "_size",
        "_ttl_due",
        "_ttl_queued",
        "_meta_due",
        "_meta_queued",
    )

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self.top_offset = 0
        self._slots: list[Publication] = []
        self._head = 0
        self._size = 0
        # HistoryStore's timer bookkeeping (see the module docstring).
        self._ttl_due = _NONE
        self._ttl_queued = _NONE
        self._meta_due = _NONE
        self._meta_queued = _NONE

    def __len__(self) -> int:
        return len(self._slots)

    def append(self, pub: Publication, size: int) -> int:
        """Stamp `pub` with the next offset and the epoch; keep the newest `size` items."""
        top = self.top_offset + 1
        self.top_offset = top
        pub.offset = top
        pub.epoch = self.epoch
        if size != self._size:
            self._resize(size)
        slots = self._slots
        n = len(slots)
        if n < size - 1:
            slots.append(pub)  # still filling: _head is 0
        elif n == size - 1:
            self._slots = slots + [pub]  # now full: an exact-size list, no spare capacity
        elif size > 0:
            head = self._head
            slots[head] = pub
            head += 1
            self._head = 0 if head == n else head
        return top

    def _resize(self, size: int) -> None:
        """Lay the retained items out oldest-first, keeping at most `size` newest."""
        self._size = size
        slots = self._slots
        n = len(slots)
        if n == 0:
            return
        head = self._head
        if head:
            slots = slots[head:] + slots[:head]
            self._head = 0
        if size <= 0:
            slots = []
        elif size < n:
            slots = slots[n - size :]
        self._slots = slots

    def _range(self, first: int, count: int) -> list[Publication]:
        """`count` items oldest-first, starting at logical index `first` (0 = oldest)."""
        slots = self._slots
        n = len(slots)
        start = self._head + first
        if start >= n:
            start -= n
        end = start + count
        if end <= n:
            return slots[start:end]
        return slots[start:] + slots[: end - n]

    def since(self, offset: int, limit: int, reverse: bool) -> list[Publication]:
        """Retained publications after (forward) or before (reverse) `offset`.

        `limit` -1 (any negative) = all, 0 = none, N = at most N. Forward returns offsets
        > `offset` oldest-first, starting at the oldest retained when `offset` + 1 is no
        longer retained. Reverse returns offsets < `offset` newest-first, or nothing when
        `offset` - 1 is not retained; `offset` <= 0 with reverse means "from the newest".
        """
        slots = self._slots
        n = len(slots)
        if limit == 0 or n == 0:
            return []
        top = self.top_offset
        oldest = top - n + 1
        if reverse:
            if offset <= 0:
                start = top
            else:
                start = offset - 1
                if start < oldest or start > top:
                    return []
            count = start - oldest + 1
            if 0 < limit < count:
                count = limit
            out = self._range(start - oldest - count + 1, count)
            out.reverse()
            return out
        start = offset + 1
        if start < oldest:
            start = oldest
        elif start > top:
            return []
        count = top - start + 1
        if 0 < limit < count:
            count = limit
        return self._range(start - oldest, count)

    def latest(self) -> Publication | None:
        """The newest retained publication, or None."""
        slots = self._slots
        n = len(slots)
        if n == 0:
            return None
        head = self._head
        return slots[head - 1] if head else slots[n - 1]

    def clear(self) -> None:
        """Drop every retained publication; `top_offset` and `epoch` stay."""
        self._slots = []
        self._head = 0


class _Idempotent:
    """A cached publish result and its expiry (same lazy re-queue as the stream timers)."""

    __slots__ = ("position", "due", "queued")

    def __init__(self, position: StreamPosition, due: float) -> None:
        self.position = position
        self.due = due
        self.queued = due


class HistoryStore:
    """Every history stream of a node: the memory engine's storage (engine.md §1.2)."""

    def __init__(self, clock: Callable[[], float], default_meta_ttl: float) -> None:
        self._clock = clock
        self._default_meta_ttl = default_meta_ttl
        self._streams: dict[str, HistoryRing] = {}
        self._ttl_heap: list[tuple[float, str]] = []
        self._meta_heap: list[tuple[float, str]] = []
        self._idempotent: dict[tuple[str, str], _Idempotent] = {}
        self._idempotent_heap: list[tuple[float, tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self._streams)

    def _stream(self, channel: str) -> HistoryRing:
        ring = self._streams.get(channel)
        if ring is None:
            ring = HistoryRing(new_epoch())
            self._streams[channel] = ring
        return ring

    def _touch(self, ring: HistoryRing, channel: str, now: float, meta_ttl: float) -> None:
        """Move the stream's remove deadline to now + meta TTL (0 and default 0: never)."""
        ttl = meta_ttl if meta_ttl > 0 else self._default_meta_ttl
        if ttl <= 0:
            ring._meta_due = _NONE  # a queued entry is dropped when it pops
            return
        deadline = now + ttl
        ring._meta_due = deadline
        queued = ring._meta_queued
        if queued < 0 or deadline < queued:
            ring._meta_queued = deadline
            _heappush(self._meta_heap, (deadline, channel))

    def add(
        self, channel: str, pub: Publication, size: int, ttl: float, meta_ttl: float
    ) -> StreamPosition:
        """Append `pub` to the channel's stream (created with a new epoch if missing)."""
        now = self._clock()
        ring = self._stream(channel)
        if ttl > 0:
            deadline = now + ttl
            ring._ttl_due = deadline
            queued = ring._ttl_queued
            if queued < 0 or deadline < queued:
                ring._ttl_queued = deadline
                _heappush(self._ttl_heap, (deadline, channel))
        else:
            ring._ttl_due = _NONE
        self._touch(ring, channel, now, meta_ttl)
        offset = ring.append(pub, size)
        return _position(offset, ring.epoch)

    def get(
        self,
        channel: str,
        since: StreamPosition | None,
        limit: int,
        reverse: bool,
        meta_ttl: float,
    ) -> tuple[list[Publication], StreamPosition]:
        """Read the channel's history; the position returned is the current top and epoch.

        Epochs are not compared here (the caller answers 112 on a mismatch) and reverse
        with `since.offset == 0` is not refused (the caller answers 107).
        """
        ring = self._stream(channel)
        self._touch(ring, channel, self._clock(), meta_ttl)
        top = ring.top_offset
        position = _position(top, ring.epoch)
        if limit == 0 or len(ring) == 0:
            return [], position
        offset = 0 if since is None else since.offset
        # keep a client's offset (uint64 on the wire) inside the ring's C integer range
        if offset < 0:
            offset = 0
        elif offset > top + 2:
            offset = top + 2
        return ring.since(offset, limit, reverse), position

    def remove_history(self, channel: str) -> None:
        """Drop the channel's publications; its top offset and epoch stay."""
        ring = self._streams.get(channel)
        if ring is not None:
            ring.clear()

    def expire(self) -> int:
        """Run due timers; return how many streams were cleared or removed plus cache drops."""
        now = self._clock()
        actions = 0
        streams = self._streams

        heap = self._ttl_heap
        while heap and heap[0][0] <= now:
            deadline, channel = _heappop(heap)
            ring = streams.get(channel)
            if ring is None or ring._ttl_queued != deadline:
                continue  # stale entry
            due = ring._ttl_due
            if due > now:
                ring._ttl_queued = due
                _heappush(heap, (due, channel))
                continue
            ring._ttl_queued = _NONE
            if due < 0:
                continue  # cancelled
            ring._ttl_due = _NONE
            ring.clear()
            actions += 1

        heap = self._meta_heap
        while heap and heap[0][0] <= now:
            deadline, channel = _heappop(heap)
            ring = streams.get(channel)
            if ring is None or ring._meta_queued != deadline:
                continue
            due = ring._meta_due
            if due > now:
                ring._meta_queued = due
                _heappush(heap, (due, channel))
                continue
            ring._meta_queued = _NONE
            if due < 0:
                continue
            del streams[channel]
            actions += 1

        cache = self._idempotent
        iheap = self._idempotent_heap
        while iheap and iheap[0][0] <= now:
            deadline, key = _heappop(iheap)
            entry = cache.get(key)
            if entry is None or entry.queued != deadline:
                continue
            due = entry.due
            if due > now:
                entry.queued = due
                _heappush(iheap, (due, key))
                continue
            del cache[key]
            actions += 1
        return actions

    def idempotent_get(self, channel: str, key: str) -> StreamPosition | None:
        """The position cached for a publish with this idempotency key, unless expired."""
        entry = self._idempotent.get((channel, key))
        if entry is None or entry.due <= self._clock():
            return None
        return entry.position

    def idempotent_put(self, channel: str, key: str, position: StreamPosition, ttl: float) -> None:
        """Cache a publish result for `ttl` seconds (nothing is cached when `ttl` <= 0)."""
        if ttl <= 0:
            return
        due = self._clock() + ttl
        k = (channel, key)
        entry = self._idempotent.get(k)
        if entry is None:
            self._idempotent[k] = _Idempotent(position, due)
            _heappush(self._idempotent_heap, (due, k))
            return
        entry.position = position
        entry.due = due
        if due < entry.queued:
            entry.queued = due
            _heappush(self._idempotent_heap, (due, k))

    def pending_deadlines(self) -> int:
        """Entries in all timer heaps, live and stale (for tests of the memory bound)."""
        return len(self._ttl_heap) + len(self._meta_heap) + len(self._idempotent_heap)
