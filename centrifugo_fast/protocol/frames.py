"""RFC 6455 framing: opcodes, close codes, and the selected FrameParser twin.

`FrameParser`, `encode_frame` and `encode_close` come from the compiled twin
(`_wsframe_c`) when available, else from the pure twin (`_wsframe_py`); nothing else
imports a twin directly.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

from .. import twins


class Opcode(IntEnum):
    """WebSocket frame opcodes."""

    CONT = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(IntEnum):
    """WebSocket close codes used by the transport (Centrifugo's own are in codes.py)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011


if TYPE_CHECKING:
    from ._wsframe_py import FrameParser, encode_close, encode_frame
else:
    _impl = twins.load(
        "protocol.frames",
        "centrifugo_fast.protocol._wsframe_c",
        "centrifugo_fast.protocol._wsframe_py",
    )
    FrameParser = _impl.FrameParser
    encode_frame = _impl.encode_frame
    encode_close = _impl.encode_close

__all__ = ["CloseCode", "FrameParser", "Opcode", "encode_close", "encode_frame"]
