"""Frame parser and encoder: compiled and pure twins side by side in each group."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import pytest

from benchmarks.conftest import Benchmark

TEXT = 0x1
MASK = b"\x5a\x17\xc3\x88"


def masked_text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        header = bytes((0x81, 0x80 | n))
    elif n < 65536:
        header = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return header + MASK + bytes(b ^ MASK[i & 3] for i, b in enumerate(payload))


def text(n: int) -> bytes:
    return (b'{"method":"publish","channel":"news","data":"' + b"x" * n)[:n]


class NullSink:
    def on_message(self, opcode: int, payload: memoryview) -> None:
        pass

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


@pytest.mark.parametrize(("label", "size"), [("16B", 16), ("1KiB", 1024), ("64KiB", 65536)])
def test_parse_masked_text(
    benchmark: Benchmark, wsframe: ModuleType, label: str, size: int
) -> None:
    benchmark.group = f"parse masked text {label}"
    parser = wsframe.FrameParser(NullSink(), 1 << 20)
    frame = masked_text_frame(text(size))
    if len(frame) <= 65536:
        benchmark(_read, parser, frame)
    else:  # larger than one scratch read: feed as the event loop would
        benchmark(parser.feed_data, frame)
    assert parser.buffered_size == 0


def test_parse_100_small_frames(benchmark: Benchmark, wsframe: ModuleType) -> None:
    benchmark.group = "parse 100 frames in one read"
    parser = wsframe.FrameParser(NullSink(), 1 << 20)
    data = b"".join(masked_text_frame(text(40 + i % 20)) for i in range(100))
    benchmark(_read, parser, data)
    assert parser.buffered_size == 0


@pytest.mark.parametrize(("label", "size"), [("100B", 100), ("64KiB", 65536)])
def test_encode_frame(benchmark: Benchmark, wsframe: ModuleType, label: str, size: int) -> None:
    benchmark.group = f"encode_frame {label}"
    payload = os.urandom(size)
    frame = benchmark(wsframe.encode_frame, TEXT, payload)
    assert frame.endswith(payload)
