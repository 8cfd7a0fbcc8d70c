"""The engine's Lua scripts (files in `lua/`), loaded once and called by SHA1."""

from __future__ import annotations

import hashlib
from importlib import resources


class Script:
    """One Lua script: its source and SHA1 (for EVALSHA, with EVAL as the fallback)."""

    __slots__ = ("name", "source", "sha")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


def _load(name: str) -> Script:
    text = resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")
    return Script(name, text)


PUBLISH_HISTORY = _load("publish_history")
PUBLISH_IDEMPOTENT = _load("publish_idempotent")
PUBLISH_PLAIN = _load("publish_plain")
HISTORY = _load("history")
PRESENCE_ADD = _load("presence_add")
PRESENCE_REMOVE = _load("presence_remove")
PRESENCE_GET = _load("presence_get")
PRESENCE_STATS = _load("presence_stats")

ALL = (
    PUBLISH_HISTORY,
    PUBLISH_IDEMPOTENT,
    PUBLISH_PLAIN,
    HISTORY,
    PRESENCE_ADD,
    PRESENCE_REMOVE,
    PRESENCE_GET,
    PRESENCE_STATS,
)
