# cython: annotation_typing=False
"""Fan-out: deliver one prepared frame to many connections with coalesced writes.

This one source is the pure twin and, compiled by Cython with `_fanout_c.pxd`, the compiled
twin `_fanout_c` (design.md §3-4). It imports nothing from asyncio: the scheduler is given the
event loop's `call_soon`, and a writer's transport is anything with `write(bytes)` and
`get_write_buffer_size()`.

Why it is shaped like this:
  * a publication is encoded and framed once per encoding key (PreparedPush), so the cost per
    subscriber is one enqueue of a shared bytes object;
  * writes are queued and flushed once per event-loop turn, so a burst of publications costs
    one write call per connection, not one per message;
  * a queue is bounded: a connection over `max_queue_size` is failed as slow, after the loop
    over subscribers ends (so the hub is never mutated during a broadcast).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

#: Reasons a writer fails; the owner maps them to Centrifugo disconnects.
FAIL_SLOW = 1
FAIL_BAD_PAYLOAD = 2
FAIL_TRANSPORT = 3

_NO_KEY = -1


class FlushScheduler:
    """Flushes every writer that got data once per event-loop turn, with one callback."""

    def __init__(self, call_soon: Callable[[Callable[[], None]], Any]) -> None:
        self._call_soon = call_soon
        self._pending: list[Writer] = []
        self._failed: list[Writer] = []
        self._scheduled = False

    def schedule(self, writer: Writer) -> None:
        """Flush `writer` at the end of this loop turn."""
        self._pending.append(writer)
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self.run)

    def fail_later(self, writer: Writer) -> None:
        """Report `writer`'s failure at the end of this loop turn (never mid-broadcast)."""
        self._failed.append(writer)
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self.run)

    def run(self) -> None:
        """Flush pending writers, then report failed ones."""
        self._scheduled = False
        while self._pending or self._failed:
            pending = self._pending
            self._pending = []
            for writer in pending:
                writer.flush()
            failed = self._failed
            self._failed = []
            for writer in failed:
                writer.report_failure()

    def pending_count(self) -> int:
        """How many writers wait for a flush (for tests)."""
        return len(self._pending)


class Writer:
    """One connection's outgoing queue of complete frames, bounded in bytes."""

    def __init__(
        self,
        transport: Any,
        scheduler: FlushScheduler,
        max_queue_size: int,
        encoding_key: int,
        on_failure: Callable[[int], None],
    ) -> None:
        self.transport = transport
        self.scheduler = scheduler
        self.max_queue_size = max_queue_size
        self.encoding_key = encoding_key
        self.on_failure = on_failure
        self.queue: list[bytes] | None = None
        self.queued_bytes = 0
        self.closed = False
        self.failure = 0

    def enqueue(self, frame: bytes) -> None:
        """Queue one complete frame; fail the writer as slow when the bound is exceeded."""
        if self.closed:
            return
        queue = self.queue
        if queue is None:
            self.queue = [frame]
            self.scheduler.schedule(self)
        else:
            queue.append(frame)
        self.queued_bytes += len(frame)
        if self.queued_bytes > self.max_queue_size:
            self.fail(FAIL_SLOW)

    def fail(self, reason: int) -> None:
        """Stop accepting frames and report `reason` to the owner after this loop turn."""
        if self.closed:
            return
        self.closed = True
        self.failure = reason
        self.queue = None
        self.queued_bytes = 0
        self.scheduler.fail_later(self)

    def report_failure(self) -> None:
        """Tell the owner why this writer failed (called by the scheduler)."""
        if self.failure:
            self.on_failure(self.failure)

    def flush(self) -> None:
        """Write everything queued in one call; fail as slow if the socket cannot keep up."""
        queue = self.queue
        if queue is None:
            return
        self.queue = None
        self.queued_bytes = 0
        if self.closed:
            return
        transport = self.transport
        try:
            if len(queue) == 1:
                transport.write(queue[0])
            else:
                transport.write(b"".join(queue))
            buffered = transport.get_write_buffer_size()
        except Exception:
            self.fail(FAIL_TRANSPORT)
            return
        if buffered > self.max_queue_size:
            self.fail(FAIL_SLOW)

    def drain(self) -> list[bytes]:
        """Take what is queued without writing it (used before a close frame)."""
        queue = self.queue
        self.queue = None
        self.queued_bytes = 0
        return queue if queue is not None else []

    def close(self) -> None:
        """Accept nothing more; drop what is queued."""
        self.closed = True
        self.queue = None
        self.queued_bytes = 0


class PreparedPush:
    """A push encoded and framed lazily, once per encoding key.

    `encode(key)` returns the complete frame for that key, or None when the payload cannot be
    expressed for it (a JSON subscriber and non-JSON bytes).
    """

    def __init__(self, encode: Callable[[int], bytes | None]) -> None:
        self._encode = encode
        self._key = _NO_KEY
        self._frame: bytes | None = None
        self._others: dict[int, bytes | None] | None = None

    def frame(self, key: int) -> bytes | None:
        """The frame for `key`, encoding it on first use."""
        if key == self._key:
            return self._frame
        if self._key == _NO_KEY:
            frame = self._encode(key)
            self._key = key
            self._frame = frame
            return frame
        others = self._others
        if others is None:
            others = {}
            self._others = others
        if key in others:
            return others[key]
        frame = self._encode(key)
        others[key] = frame
        return frame


def broadcast(writers: Iterable[Writer], prepared: PreparedPush) -> int:
    """Enqueue `prepared` to every writer; return how many writers were visited."""
    count = 0
    last_key = _NO_KEY
    frame: bytes | None = None
    for writer in writers:
        key = writer.encoding_key
        if key != last_key:
            frame = prepared.frame(key)
            last_key = key
        if frame is None:
            writer.fail(FAIL_BAD_PAYLOAD)
        else:
            writer.enqueue(frame)
        count += 1
    return count
