"""A Markdown reference of every option, generated from the schema (`centrifugo-fast configdoc`)."""

from __future__ import annotations

import json
import typing
from typing import Any

import msgspec

from .schema import ChannelOptions, Config, Duration
from .support import (
    NOT_YET,
    NOT_YET_CHANNEL_OPTIONS,
    REFUSED,
    REFUSED_CHANNEL_OPTIONS,
    listed,
)

BEGIN = "<!-- configdoc:begin -->"
END = "<!-- configdoc:end -->"


def _default(struct: Any, name: str) -> str:
    value = getattr(struct, name)
    if isinstance(value, Duration):
        seconds = float(value)
        if seconds == 0:
            return '`"0s"`'
        if seconds >= 3600 and seconds % 3600 == 0:
            return f'`"{int(seconds // 3600)}h"`'
        return f'`"{seconds:g}s"`'
    if isinstance(value, msgspec.Struct):
        return ""
    return f"`{json.dumps(value)}`"


def _status(name: str, not_yet: frozenset[str], refused: frozenset[str]) -> str:
    if listed(name, refused):
        return "refused"
    if listed(name, not_yet):
        return "not yet"
    return "yes"


def _rows(struct: Any, prefix: str = "") -> list[tuple[str, str, str]]:
    rows = []
    hints = typing.get_type_hints(type(struct))
    for name in type(struct).__struct_fields__:
        path = prefix + name
        if path == "channel.without_namespace" or path == "channel.namespaces":
            rows.append((path, "see channel options", "yes"))
            continue
        if isinstance(hints[name], type) and issubclass(hints[name], msgspec.Struct):
            rows += _rows(getattr(struct, name), path + ".")
            continue
        rows.append((path, _default(struct, name), _status(path, NOT_YET, REFUSED)))
    return rows


def markdown() -> str:
    """The option tables, delimited so the README section can be regenerated."""
    lines = [BEGIN, "", "| option | default | supported |", "|---|---|---|"]
    lines += [f"| `{p}` | {d} | {s} |" for p, d, s in _rows(Config())]
    lines += [
        "",
        "Channel options (in `channel.without_namespace` and each `channel.namespaces[]` "
        "entry, which also has `name`):",
        "",
        "| option | default | supported |",
        "|---|---|---|",
    ]
    opts = ChannelOptions()
    for name in ChannelOptions.__struct_fields__:
        status = _status(name, NOT_YET_CHANNEL_OPTIONS, REFUSED_CHANNEL_OPTIONS)
        if name == "subscription_type":
            status = "`stream` only"
        lines.append(f"| `{name}` | {_default(opts, name)} | {status} |")
    lines += ["", END]
    return "\n".join(lines)
