"""permessage-deflate: the per-publication cost of one compressed push frame, and inflating.

Fan-out builds a push frame once per publication (design.md §4), so compression adds its cost
once per publication, not per subscriber; compare it with framing the push uncompressed.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from benchmarks.conftest import Benchmark
from centrifugo_fast.protocol.deflate import compress, inflate

TEXT = 0x1
MASK = b"\x5a\x17\xc3\x88"


def push_1kib() -> bytes:
    """A 1 KiB JSON publication push, as the hub encodes it."""
    rows = [
        {"id": i, "user": f"user-{i * 7919 % 100000}", "score": i * 37 % 101} for i in range(60)
    ]
    data = json.dumps({"rows": rows}, separators=(",", ":"))
    head = '{"push":{"channel":"news","pub":{"data":'
    tail = ',"offset":123456}}}'
    body = data[: 1024 - len(head) - len(tail) - 2] + "]}"
    return (head + body + tail).encode()


PUSH = push_1kib()
COMPRESSED = compress(PUSH, 1)


def masked_frame(opcode: int, payload: bytes, rsv: int = 0) -> bytes:
    n = len(payload)
    b0 = 0x80 | rsv | opcode
    if n < 126:
        header = bytes((b0, 0x80 | n))
    else:
        header = bytes((b0, 0x80 | 126)) + n.to_bytes(2, "big")
    return header + MASK + bytes(b ^ MASK[i & 3] for i, b in enumerate(payload))


class NullSink:
    def __init__(self) -> None:
        self.size = 0

    def on_message(self, opcode: int, payload: memoryview) -> None:
        self.size = len(payload)

    def on_ping(self, payload: bytes) -> None:
        pass

    def on_pong(self, payload: bytes) -> None:
        pass

    def on_close(self, code: int, reason: str) -> None:
        pass

    def on_protocol_error(self, close_code: int, reason: str) -> None:
        raise AssertionError(reason)


def _read(parser: Any, data: bytes) -> None:
    """One event-loop read: copy into get_buffer() and call buffer_updated()."""
    buf = parser.get_buffer(-1)
    buf[: len(data)] = data
    parser.buffer_updated(len(data))


def test_push_size() -> None:
    assert len(PUSH) == 1024
    assert len(COMPRESSED) < len(PUSH) // 2


def test_frame_push_uncompressed(benchmark: Benchmark, wsframe: ModuleType) -> None:
    benchmark.group = "push frame 1KiB, once per publication"
    frame = benchmark(wsframe.encode_frame, TEXT, PUSH)
    assert len(frame) == 1028


def test_frame_push_compressed(benchmark: Benchmark, wsframe: ModuleType) -> None:
    benchmark.group = "push frame 1KiB, once per publication"

    def build() -> bytes:
        frame: bytes = wsframe.encode_frame(TEXT, compress(PUSH, 1), True, True)
        return frame

    frame = benchmark(build)
    assert frame[0] == 0xC1 and len(frame) < 600


def test_inflate_1kib(benchmark: Benchmark) -> None:
    benchmark.group = "inflate 1KiB message"
    assert benchmark(inflate, COMPRESSED, 65536) == PUSH


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "deflate"])
def test_parse_1kib_message(benchmark: Benchmark, wsframe: ModuleType, compressed: bool) -> None:
    benchmark.group = "parse masked 1KiB text message (parser with inflate=True)"
    sink = NullSink()
    parser = wsframe.FrameParser(sink, 65536, inflate=True)
    if compressed:
        frame = masked_frame(TEXT, COMPRESSED, rsv=0x40)
    else:
        frame = masked_frame(TEXT, PUSH)
    benchmark(_read, parser, frame)
    assert sink.size == len(PUSH)
