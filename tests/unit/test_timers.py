"""The shared timer wheel and the eager coroutine runner."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from centrifugo_fast.core.eager import run_eagerly
from centrifugo_fast.core.timers import TimerWheel


class FakeLoop:
    def __init__(self) -> None:
        self.now = 0.0
        self.scheduled: list[tuple[float, Callable[[], None], Any]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> Any:
        loop = self

        class Handle:
            cancelled = False

            def cancel(self) -> None:
                self.cancelled = True
                loop.scheduled = [s for s in loop.scheduled if s[2] is not self]

        handle = Handle()
        self.scheduled.append((when, callback, handle))
        return handle

    def advance(self, seconds: float) -> None:
        self.now += seconds
        while True:
            due = [s for s in self.scheduled if s[0] <= self.now]
            if not due:
                return
            first = min(due, key=lambda s: s[0])
            self.scheduled.remove(first)
            first[1]()


def test_one_loop_timer_for_many_deadlines() -> None:
    loop = FakeLoop()
    wheel = TimerWheel(loop, tick=0.1)
    fired: list[int] = []
    for i in range(1000):
        wheel.call_later(1.0 + (i % 10) * 0.01, functools.partial(fired.append, i))
    assert len(loop.scheduled) == 1
    assert len(wheel) == 1000
    loop.advance(0.95)
    assert fired == []
    loop.advance(0.3)
    assert sorted(fired) == list(range(1000))
    assert loop.scheduled == [] and len(wheel) == 0


def test_earlier_deadline_rearms() -> None:
    loop = FakeLoop()
    wheel = TimerWheel(loop, tick=0.1)
    order: list[str] = []
    wheel.call_later(5, lambda: order.append("late"))
    wheel.call_later(1, lambda: order.append("early"))
    loop.advance(1.05)
    assert order == ["early"]
    loop.advance(4)
    assert order == ["early", "late"]


def test_callbacks_can_schedule_more() -> None:
    loop = FakeLoop()
    wheel = TimerWheel(loop, tick=0.1)
    count = [0]

    def tick() -> None:
        count[0] += 1
        if count[0] < 5:
            wheel.call_later(1, tick)

    wheel.call_later(1, tick)
    for _ in range(10):
        loop.advance(1.0)
    assert count[0] == 5


def test_deadline_pending_while_a_callback_schedules_a_later_one() -> None:
    # A callback that schedules further out than a deadline already waiting must not
    # postpone that deadline (a ping scheduling the next ping 25 s out used to delay every
    # other connection's first ping until then).
    loop = FakeLoop()
    wheel = TimerWheel(loop, tick=0.1)
    fired: list[tuple[str, float]] = []
    wheel.call_later(1, lambda: wheel.call_later(25, lambda: fired.append(("next", loop.now))))
    wheel.call_later(2, lambda: fired.append(("waiting", loop.now)))
    loop.advance(1.05)
    assert fired == []
    loop.advance(1.0)
    assert [name for name, _ in fired] == ["waiting"]
    assert fired[0][1] < 2.2
    loop.advance(25)
    assert [name for name, _ in fired] == ["waiting", "next"]


def test_close_drops_everything() -> None:
    loop = FakeLoop()
    wheel = TimerWheel(loop)
    wheel.call_later(1, lambda: None)
    wheel.close()
    assert loop.scheduled == [] and len(wheel) == 0


def test_run_eagerly_without_suspension_needs_no_task() -> None:
    async def main() -> None:
        done: list[int] = []

        async def sync() -> None:
            done.append(1)

        assert run_eagerly(sync(), asyncio.get_running_loop()) is None
        assert done == [1]

    asyncio.run(main())


def test_run_eagerly_continues_after_suspension() -> None:
    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        log: list[object] = []
        fut: asyncio.Future[int] = loop.create_future()
        bad: asyncio.Future[int] = loop.create_future()

        async def work() -> None:
            log.append("start")
            log.append(await fut)
            await asyncio.sleep(0)
            try:
                await bad
            except ValueError as exc:
                log.append(str(exc))

        task = run_eagerly(work(), loop)
        assert task is not None and log == ["start"]
        loop.call_soon(fut.set_result, 7)
        loop.call_later(0.01, bad.set_exception, ValueError("boom"))
        await task
        return log

    assert asyncio.run(main()) == ["start", 7, "boom"]


def test_run_eagerly_propagates_cancellation() -> None:
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        log: list[str] = []

        async def work() -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                log.append("cancelled")
                raise

        task = run_eagerly(work(), loop)
        assert task is not None
        await asyncio.sleep(0)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            log.append("task cancelled")
        return log

    assert asyncio.run(main()) == ["cancelled", "task cancelled"]
