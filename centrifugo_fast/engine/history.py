"""History streams selector: the compiled `_history_c` when available, else `_history_py`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import twins

if TYPE_CHECKING:
    from ._history_py import HistoryRing, HistoryStore, new_epoch
else:
    _impl = twins.load(
        "engine.history",
        "centrifugo_fast.engine._history_c",
        "centrifugo_fast.engine._history_py",
    )
    HistoryRing = _impl.HistoryRing
    HistoryStore = _impl.HistoryStore
    new_epoch = _impl.new_epoch

__all__ = ["HistoryRing", "HistoryStore", "new_epoch"]
