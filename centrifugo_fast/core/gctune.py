"""Garbage-collector settings for a long-running server process.

A connect storm allocates many small objects per connection, most of them long-lived, and
CPython's default thresholds (700 allocations) then run young collections every few connects
and promote every live connection into full collections again and again: py-spy showed
`gc_collect_main` as the largest single cost of the storm scenario (15 % of server CPU).
Objects created before serving (modules, config, compiled regexes) never become garbage, so
they are frozen out of every collection, and the young generation is made large enough that
a collection runs per few hundred connects, not per few.
"""

from __future__ import annotations

import gc

#: Net allocations between young collections (CPython default: 700).
YOUNG_THRESHOLD = 50_000


def tune_for_serving() -> None:
    """Freeze start-up objects and raise the young-generation threshold."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
