"""The client side of Centrifugo's protocol v2, as much of it as a load generator speaks.

The generator writes commands (connect, subscribe) in JSON or Protobuf and reads replies and
pushes. It never decodes a publication: every benchmark payload is a JSON object that starts
with ``{"t":<19-digit send time in ns>`` and both encodings embed that object verbatim, so a
byte search finds each delivery and its send time in either encoding.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: What marks a benchmark publication inside any frame, in either encoding.
MARK = b'{"t":'
_MARK_LEN = len(MARK)
_STAMP_DIGITS = 19


#: Added to perf_counter_ns() stamps so they always have 19 digits and no leading zero (JSON).
_STAMP_BASE = 10**18


def payload(send_ns: int, size: int) -> bytes:
    """A benchmark publication of exactly `size` bytes carrying its send time (perf_counter_ns)."""
    head = b'{"t":%d,"p":"' % (_STAMP_BASE + send_ns)
    pad = size - len(head) - 2
    if pad < 0:
        raise ValueError(f"payload size must be at least {len(head) + 2} bytes")
    return head + b"x" * pad + b'"}'


def stamps(frame: bytes, now_ns: int, out: list[int] | None) -> int:
    """Count the deliveries in `frame`; append their latencies (ns) to `out` if given."""
    count = 0
    pos = frame.find(MARK)
    while pos >= 0:
        count += 1
        if out is not None:
            start = pos + _MARK_LEN
            out.append(now_ns + _STAMP_BASE - int(frame[start : start + _STAMP_DIGITS]))
        pos = frame.find(MARK, pos + _MARK_LEN + _STAMP_DIGITS)
    return count


@dataclass(slots=True)
class Reply:
    """A reply or push reduced to what the generator acts on."""

    id: int = 0
    error: tuple[int, str] | None = None
    ping: bool = False
    disconnect: tuple[int, str] | None = None


# --- JSON -------------------------------------------------------------------------------------


def json_connect(cmd_id: int, token: str) -> bytes:
    """A JSON connect command."""
    body: dict[str, Any] = {"id": cmd_id, "connect": {"name": "load", "version": "0"}}
    if token:
        body["connect"]["token"] = token
    return json.dumps(body, separators=(",", ":")).encode()


def json_subscribe(cmd_id: int, channel: str) -> bytes:
    """A JSON subscribe command."""
    return json.dumps(
        {"id": cmd_id, "subscribe": {"channel": channel}}, separators=(",", ":")
    ).encode()


JSON_PONG = b"{}"


def json_replies(frame: bytes) -> list[Reply]:
    """Decode the non-publication entries of a JSON frame (newline-separated)."""
    replies = []
    for line in frame.split(b"\n"):
        if not line or MARK in line:
            continue
        obj = json.loads(line)
        reply = Reply(id=int(obj.get("id", 0)))
        if not obj:
            reply.ping = True
        if "error" in obj:
            err = obj["error"]
            reply.error = (int(err.get("code", 0)), str(err.get("message", "")))
        push = obj.get("push")
        if push and "disconnect" in push:
            d = push["disconnect"]
            reply.disconnect = (int(d.get("code", 0)), str(d.get("reason", "")))
        replies.append(reply)
    return replies


# --- Protobuf ---------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _delimited(message: bytes) -> bytes:
    return _varint(len(message)) + message


def pb_connect(cmd_id: int, token: str) -> bytes:
    """A Protobuf connect command (Command.id = 1, Command.connect = 4), length-delimited."""
    req = _field(4, b"load") + _field(5, b"0")
    if token:
        req = _field(1, token.encode()) + req
    return _delimited(_varint(1 << 3) + _varint(cmd_id) + _field(4, req))


def pb_subscribe(cmd_id: int, channel: str) -> bytes:
    """A Protobuf subscribe command (Command.subscribe = 5), length-delimited."""
    return _delimited(_varint(1 << 3) + _varint(cmd_id) + _field(5, _field(1, channel.encode())))


#: An empty Command answers the server's empty-Reply ping.
PB_PONG = b"\x00"


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> dict[int, int | bytes]:
    """The top-level fields of a message (the last occurrence wins)."""
    out: dict[int, int | bytes] = {}
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _read_varint(data, pos)
        wire = key & 7
        if wire == 0:
            out[key >> 3], pos = _read_varint(data, pos)
        elif wire == 2:
            n, pos = _read_varint(data, pos)
            out[key >> 3] = data[pos : pos + n]
            pos += n
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return out


def _code_text(msg: bytes) -> tuple[int, str]:
    f = _fields(msg)
    code = f.get(1, 0)
    text = f.get(2, b"")
    return (code if isinstance(code, int) else 0, text.decode() if isinstance(text, bytes) else "")


def pb_replies(frame: bytes) -> list[Reply]:
    """Decode the non-publication replies of a Protobuf frame (varint-delimited Replies)."""
    replies = []
    pos, end = 0, len(frame)
    while pos < end:
        n, pos = _read_varint(frame, pos)
        item = frame[pos : pos + n]
        pos += n
        if MARK in item:
            continue
        f = _fields(item)
        cmd_id = f.get(1, 0)
        reply = Reply(id=cmd_id if isinstance(cmd_id, int) else 0, ping=not f)
        err = f.get(2)
        if isinstance(err, bytes):
            reply.error = _code_text(err)
        push = f.get(4)
        if isinstance(push, bytes):
            disconnect = _fields(push).get(11)
            if isinstance(disconnect, bytes):
                reply.disconnect = _code_text(disconnect)
        replies.append(reply)
    return replies


def pb_item_count(frame: bytes) -> int:
    """How many varint-delimited Replies a Protobuf frame holds."""
    count = 0
    pos, end = 0, len(frame)
    while pos < end:
        n, pos = _read_varint(frame, pos)
        pos += n
        count += 1
    return count
