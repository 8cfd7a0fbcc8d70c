"""Fan-out selector: the compiled `_fanout_c` when available, else `_fanout_py`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import twins

if TYPE_CHECKING:
    from ._fanout_py import (
        FAIL_BAD_PAYLOAD,
        FAIL_SLOW,
        FAIL_TRANSPORT,
        FlushScheduler,
        PreparedPush,
        Writer,
        broadcast,
    )
else:
    _impl = twins.load(
        "core.fanout", "centrifugo_fast.core._fanout_c", "centrifugo_fast.core._fanout_py"
    )
    FAIL_BAD_PAYLOAD = _impl.FAIL_BAD_PAYLOAD
    FAIL_SLOW = _impl.FAIL_SLOW
    FAIL_TRANSPORT = _impl.FAIL_TRANSPORT
    FlushScheduler = _impl.FlushScheduler
    PreparedPush = _impl.PreparedPush
    Writer = _impl.Writer
    broadcast = _impl.broadcast

__all__ = [
    "FAIL_BAD_PAYLOAD",
    "FAIL_SLOW",
    "FAIL_TRANSPORT",
    "FlushScheduler",
    "PreparedPush",
    "Writer",
    "broadcast",
]
