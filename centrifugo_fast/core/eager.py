"""Run a coroutine synchronously until it first suspends; only then hand it to a task.

Command handling is written as coroutines because engines may do I/O (Redis), but with the
memory engine nothing ever suspends. Creating a task per incoming frame would then be pure
overhead, so the coroutine is stepped in place and continued in a task only if it yields.
(Python 3.12's eager task factory does the same; we support 3.11.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def run_eagerly(
    coro: Coroutine[Any, Any, None], loop: asyncio.AbstractEventLoop
) -> asyncio.Task[None] | None:
    """Step `coro` now; return the task continuing it, or None if it already finished."""
    try:
        yielded = coro.send(None)
    except StopIteration:
        return None
    except BaseException:
        coro.close()
        raise
    return loop.create_task(_resume(coro, yielded))


async def _resume(coro: Coroutine[Any, Any, None], yielded: Any) -> None:
    # An asyncio coroutine yields a Future it waits on (or None for a bare yield). Wait for
    # it here, then resume `coro`, which reads the future's outcome itself, as under a Task.
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
            else:
                # Task.__step clears this flag when it takes over a yielded future.
                yielded._asyncio_future_blocking = False
                try:
                    await yielded
                except asyncio.CancelledError:
                    if not yielded.cancelled():
                        raise
                except Exception:  # noqa: S110 - the outcome is re-read by `coro` itself
                    pass
        except asyncio.CancelledError as exc:
            try:
                yielded = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
