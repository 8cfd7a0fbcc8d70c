"""Value types shared by engines, the hub and the codecs (Centrifuge vocabulary)."""

from __future__ import annotations

from typing import NamedTuple

import msgspec


class ClientInfo(msgspec.Struct, frozen=True, gc=False):
    """Who a connection is: user id ("" = anonymous), client id, optional infos (raw bytes)."""

    user: str
    client: str
    conn_info: bytes = b""
    chan_info: bytes = b""


class Publication(msgspec.Struct, gc=False):
    """One message published into a channel.

    `data` is the payload bytes exactly as published. `data_is_json` is False when the bytes
    came from a binary source (b64data) and were never checked to be JSON, so JSON-protocol
    subscribers must check them first.
    """

    data: bytes
    info: ClientInfo | None = None
    offset: int = 0
    tags: dict[str, str] | None = None
    time: int = 0
    epoch: str = ""
    data_is_json: bool = True
    #: Publisher allows delta-compressed delivery (API `delta` or namespace `delta_publish`).
    delta: bool = False


class StreamPosition(NamedTuple):
    """A position in a channel's history stream: offset of the last item and stream epoch."""

    offset: int
    epoch: str


class PublishResult(NamedTuple):
    """The outcome of a publish: stream position (zero without history)."""

    offset: int = 0
    epoch: str = ""
    suppressed: bool = False
