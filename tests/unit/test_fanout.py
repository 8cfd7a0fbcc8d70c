"""Fan-out twins: coalesced writes, bounded queues, encode-once per key."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest


class FakeTransport:
    """Records writes; `buffered` simulates what the socket could not send yet."""

    def __init__(self, buffered: int = 0, fail: bool = False) -> None:
        self.writes: list[bytes] = []
        self.buffered = buffered
        self.fail = fail

    def write(self, data: bytes) -> None:
        if self.fail:
            raise ConnectionResetError("gone")
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered


class FakeLoop:
    """call_soon that runs only when the test says the loop turn ended."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []

    def call_soon(self, cb: Callable[[], None]) -> None:
        self.callbacks.append(cb)

    def run_turn(self) -> None:
        callbacks, self.callbacks = self.callbacks, []
        for cb in callbacks:
            cb()


def _writer(
    fanout: ModuleType,
    loop: FakeLoop,
    key: int = 0,
    max_size: int = 1000,
    transport: FakeTransport | None = None,
) -> tuple[Any, FakeTransport, list[int]]:
    failures: list[int] = []
    transport = transport or FakeTransport()
    scheduler = getattr(loop, "scheduler", None)
    if scheduler is None:
        scheduler = fanout.FlushScheduler(loop.call_soon)
        loop.scheduler = scheduler  # type: ignore[attr-defined]
    return fanout.Writer(transport, scheduler, max_size, key, failures.append), transport, failures


def test_writes_are_coalesced_per_loop_turn(fanout: ModuleType) -> None:
    loop = FakeLoop()
    writer, transport, _ = _writer(fanout, loop)
    for frame in (b"a", b"bb", b"ccc"):
        writer.enqueue(frame)
    assert transport.writes == []
    assert len(loop.callbacks) == 1  # one scheduler callback, not one per frame
    loop.run_turn()
    assert transport.writes == [b"abbccc"]
    writer.enqueue(b"d")
    loop.run_turn()
    assert transport.writes == [b"abbccc", b"d"]


def test_one_callback_flushes_many_writers(fanout: ModuleType) -> None:
    loop = FakeLoop()
    writers = [_writer(fanout, loop) for _ in range(50)]
    for writer, _, _ in writers:
        writer.enqueue(b"x")
    assert len(loop.callbacks) == 1
    loop.run_turn()
    assert all(t.writes == [b"x"] for _, t, _ in writers)


def test_queue_bound_fails_writer_as_slow_after_the_turn(fanout: ModuleType) -> None:
    loop = FakeLoop()
    writer, transport, failures = _writer(fanout, loop, max_size=10)
    writer.enqueue(b"12345")
    writer.enqueue(b"123456")  # 11 bytes > 10
    assert failures == []  # never reported mid-broadcast
    writer.enqueue(b"more")
    loop.run_turn()
    assert failures == [fanout.FAIL_SLOW]
    assert transport.writes == []  # a slow writer's queue is dropped
    assert writer.closed


def test_socket_backlog_fails_writer_as_slow(fanout: ModuleType) -> None:
    loop = FakeLoop()
    writer, transport, failures = _writer(
        fanout, loop, max_size=100, transport=FakeTransport(buffered=101)
    )
    writer.enqueue(b"x")
    loop.run_turn()
    assert transport.writes == [b"x"]
    assert failures == [fanout.FAIL_SLOW]


def test_transport_error_fails_writer(fanout: ModuleType) -> None:
    loop = FakeLoop()
    writer, _, failures = _writer(fanout, loop, transport=FakeTransport(fail=True))
    writer.enqueue(b"x")
    loop.run_turn()
    assert failures == [fanout.FAIL_TRANSPORT]


def test_closed_writer_ignores_frames(fanout: ModuleType) -> None:
    loop = FakeLoop()
    writer, transport, _ = _writer(fanout, loop)
    writer.enqueue(b"x")
    writer.close()
    writer.enqueue(b"y")
    loop.run_turn()
    assert transport.writes == []


def test_drain_takes_the_queue(fanout: ModuleType) -> None:
    loop = FakeLoop()
    writer, transport, _ = _writer(fanout, loop)
    writer.enqueue(b"a")
    writer.enqueue(b"b")
    assert writer.drain() == [b"a", b"b"]
    assert writer.drain() == []
    loop.run_turn()
    assert transport.writes == []


@pytest.mark.parametrize("subscribers", [0, 1, 2, 1000])
def test_broadcast_encodes_once_per_key(fanout: ModuleType, subscribers: int) -> None:
    loop = FakeLoop()
    encoded: list[int] = []

    def encode(key: int) -> bytes:
        encoded.append(key)
        return f"frame-{key}".encode()

    writers = [_writer(fanout, loop, key=i % 2)[:2] for i in range(subscribers)]
    visited = fanout.broadcast([w for w, _ in writers], fanout.PreparedPush(encode))
    loop.run_turn()
    assert visited == subscribers
    assert sorted(encoded) == sorted({i % 2 for i in range(subscribers)})
    for i, (_, transport) in enumerate(writers):
        assert transport.writes == [f"frame-{i % 2}".encode()]


def test_frames_are_shared_not_copied(fanout: ModuleType) -> None:
    loop = FakeLoop()
    frame = b"shared-frame"
    writers = [_writer(fanout, loop)[:2] for _ in range(3)]
    fanout.broadcast([w for w, _ in writers], fanout.PreparedPush(lambda key: frame))
    loop.run_turn()
    assert all(t.writes[0] is frame for _, t in writers)


def test_unencodable_payload_fails_only_that_key(fanout: ModuleType) -> None:
    loop = FakeLoop()
    ok, ok_transport, ok_failures = _writer(fanout, loop, key=0)
    bad, bad_transport, bad_failures = _writer(fanout, loop, key=1)
    fanout.broadcast([ok, bad], fanout.PreparedPush(lambda key: b"f" if key == 0 else None))
    loop.run_turn()
    assert ok_transport.writes == [b"f"] and ok_failures == []
    assert bad_transport.writes == [] and bad_failures == [fanout.FAIL_BAD_PAYLOAD]


def test_prepared_push_caches_every_key(fanout: ModuleType) -> None:
    calls: list[int] = []

    def encode(key: int) -> bytes:
        calls.append(key)
        return bytes([key])

    prepared = fanout.PreparedPush(encode)
    assert [prepared.frame(k) for k in (3, 3, 5, 3, 5, 7, 7)] == [
        b"\x03",
        b"\x03",
        b"\x05",
        b"\x03",
        b"\x05",
        b"\x07",
        b"\x07",
    ]
    assert calls == [3, 5, 7]


def test_broadcast_accepts_dict_values(fanout: ModuleType) -> None:
    loop = FakeLoop()
    subs = {f"c{i}": _writer(fanout, loop)[0] for i in range(3)}
    assert fanout.broadcast(subs.values(), fanout.PreparedPush(lambda k: b"z")) == 3
