"""RFC 6455 frame parser and encoder: every test runs on both twins (the `wsframe` fixture)."""

from __future__ import annotations

import ast
import inspect
import random
import zlib
from pathlib import Path
from types import GetSetDescriptorType, ModuleType
from typing import Any

import pytest

from tests.twins import load_twin

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MASK = b"\x37\xfa\x21\x3d"
BIG = 1 << 20

Event = tuple[Any, ...]


# -- helpers ------------------------------------------------------------------------------


def client_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    mask: bytes = MASK,
    length: int | None = None,
) -> bytes:
    """A client frame; `length` overrides the announced payload length."""
    n = len(payload) if length is None else length
    b0 = opcode | (0x80 if fin else 0) | rsv
    mbit = 0x80 if masked else 0
    if n < 126:
        header = bytes((b0, mbit | n))
    elif n < 65536:
        header = bytes((b0, mbit | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((b0, mbit | 127)) + n.to_bytes(8, "big")
    if not masked:
        return header + payload
    return header + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(payload))


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


def utf8_payload(n: int) -> bytes:
    """Exactly n bytes of valid UTF-8 mixing 1- to 4-byte characters."""
    out = bytearray()
    chars = "héllo wörld €😀 ".encode()
    text = chars.decode()
    i = 0
    while len(out) < n:
        enc = text[i % len(text)].encode()
        out += enc if len(out) + len(enc) <= n else b"a"
        i += 1
    return bytes(out)


class Recorder:
    """A sink that records every callback; payloads are copied inside the call."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_message(self, opcode: int, payload: memoryview) -> None:
        assert isinstance(payload, memoryview)
        self.events.append(("message", opcode, bytes(payload)))

    def on_ping(self, payload: bytes) -> None:
        assert type(payload) is bytes
        self.events.append(("ping", payload))

    def on_pong(self, payload: bytes) -> None:
        assert type(payload) is bytes
        self.events.append(("pong", payload))

    def on_close(self, code: int, reason: str) -> None:
        self.events.append(("close", code, reason))

    def on_protocol_error(self, close_code: int, reason: str) -> None:
        assert isinstance(reason, str) and reason
        self.events.append(("error", close_code))


def make(wsframe: ModuleType, max_size: int = BIG, **kwargs: Any) -> tuple[Any, Recorder]:
    sink = Recorder()
    return wsframe.FrameParser(sink, max_size, **kwargs), sink


def feed_chunks(parser: Any, data: bytes, sizes: list[int]) -> None:
    pos = 0
    for size in sizes:
        parser.feed_data(data[pos : pos + size])
        pos += size
    parser.feed_data(data[pos:])


def feed_via_buffer(parser: Any, data: bytes, read_size: int) -> None:
    """Feed like an event loop whose reads return at most read_size bytes."""
    pos = 0
    while pos < len(data):
        buf = parser.get_buffer(-1)
        assert len(buf) > 0
        n = min(len(buf), read_size, len(data) - pos)
        buf[:n] = data[pos : pos + n]
        parser.buffer_updated(n)
        pos += n


SAMPLE_FRAMES = [
    client_frame(TEXT, b"hello"),
    client_frame(BINARY, bytes(range(200))),
    client_frame(PING, b"are you there"),
    client_frame(TEXT, b"caf", fin=False),
    client_frame(PONG, b""),
    client_frame(CONT, "é ".encode(), fin=False),
    client_frame(CONT, "€😀".encode()),
    client_frame(BINARY, b"\x00" * 70000),
    client_frame(TEXT, b""),
    client_frame(CLOSE, close_payload(1001, "bye ✓".encode())),
]
SAMPLE_EVENTS: list[Event] = [
    ("message", TEXT, b"hello"),
    ("message", BINARY, bytes(range(200))),
    ("ping", b"are you there"),
    ("pong", b""),
    ("message", TEXT, "café €😀".encode()),
    ("message", BINARY, b"\x00" * 70000),
    ("message", TEXT, b""),
    ("close", 1001, "bye ✓"),
]
SAMPLE = b"".join(SAMPLE_FRAMES)


# -- lengths and the encoder --------------------------------------------------------------

LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 200_000]


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@pytest.mark.parametrize("n", LENGTHS)
def test_length_boundaries(wsframe: ModuleType, opcode: int, n: int) -> None:
    payload = utf8_payload(n) if opcode == TEXT else random.Random(n).randbytes(n)
    parser, sink = make(wsframe)
    parser.feed_data(client_frame(opcode, payload))
    assert sink.events == [("message", opcode, payload)]
    assert parser.buffered_size == 0


@pytest.mark.parametrize(
    ("n", "header"),
    [
        (0, b"\x81\x00"),
        (1, b"\x81\x01"),
        (125, b"\x81\x7d"),
        (126, b"\x81\x7e\x00\x7e"),
        (127, b"\x81\x7e\x00\x7f"),
        (65535, b"\x81\x7e\xff\xff"),
        (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (200_000, b"\x81\x7f\x00\x00\x00\x00\x00\x03\x0d\x40"),
    ],
)
def test_encode_frame_header_forms(wsframe: ModuleType, n: int, header: bytes) -> None:
    payload = b"x" * n
    frame = wsframe.encode_frame(TEXT, payload)
    assert type(frame) is bytes
    assert frame == header + payload


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@pytest.mark.parametrize("n", LENGTHS)
def test_encode_then_parse(wsframe: ModuleType, opcode: int, n: int) -> None:
    payload = utf8_payload(n)
    parser, sink = make(wsframe, require_mask=False)
    parser.feed_data(wsframe.encode_frame(opcode, payload))
    assert sink.events == [("message", opcode, payload)]


def test_encode_frame_bits_and_buffer_types(wsframe: ModuleType) -> None:
    assert wsframe.encode_frame(TEXT, b"ab", fin=False) == b"\x01\x02ab"
    assert wsframe.encode_frame(BINARY, b"ab", rsv1=True) == b"\xc2\x02ab"
    assert wsframe.encode_frame(CONT, bytearray(b"ab"), False, True) == b"\x40\x02ab"
    assert wsframe.encode_frame(PING, memoryview(b"xyz")) == b"\x89\x03xyz"
    assert wsframe.encode_frame(PONG, b"") == b"\x8a\x00"


def test_encode_frame_rejects_bad_input(wsframe: ModuleType) -> None:
    with pytest.raises(ValueError):
        wsframe.encode_frame(16, b"")
    with pytest.raises(ValueError):
        wsframe.encode_frame(-1, b"")
    with pytest.raises(ValueError):
        wsframe.encode_frame(PING, b"x" * 126)
    with pytest.raises(ValueError):
        wsframe.encode_frame(CLOSE, b"", fin=False)


def test_encode_close(wsframe: ModuleType) -> None:
    assert wsframe.encode_close(1000) == b"\x88\x02\x03\xe8"
    assert wsframe.encode_close(3001, "bye") == b"\x88\x05\x0b\xb9bye"
    assert wsframe.encode_close(0) == b"\x88\x00"
    assert wsframe.encode_close(1005, "ignored") == b"\x88\x00"
    with pytest.raises(ValueError):
        wsframe.encode_close(70000)


def test_encode_close_truncates_on_a_character_boundary(wsframe: ModuleType) -> None:
    reason = "a" + "€" * 60  # 181 bytes; 123 would split the 41st euro sign
    frame = wsframe.encode_close(4000, reason)
    payload = frame[2:]
    assert frame[1] == len(payload) <= 125
    assert payload[:2] == b"\x0f\xa0"
    assert payload[2:] == ("a" + "€" * 40).encode()  # 121 bytes
    exact = "é" * 61 + "a"  # exactly 123 bytes: kept whole
    assert wsframe.encode_close(1000, exact)[4:] == exact.encode()
    parser, sink = make(wsframe, require_mask=False)
    parser.feed_data(frame)
    assert sink.events == [("close", 4000, "a" + "€" * 40)]


# -- feeding patterns ---------------------------------------------------------------------


def test_whole_read(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe)
    parser.feed_data(SAMPLE)
    assert sink.events == SAMPLE_EVENTS
    assert parser.buffered_size == 0


def test_byte_by_byte(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe)
    small = b"".join(SAMPLE_FRAMES[:7] + SAMPLE_FRAMES[8:])
    for i in range(len(small)):
        parser.feed_data(small[i : i + 1])
    assert sink.events == SAMPLE_EVENTS[:5] + SAMPLE_EVENTS[6:]
    assert parser.buffered_size == 0


@pytest.mark.parametrize("seed", range(8))
def test_random_splits(wsframe: ModuleType, seed: int) -> None:
    rng = random.Random(seed)
    sizes = [rng.choice([1, 2, 3, 5, 13, 100, 1000, 40000]) for _ in range(60)]
    parser, sink = make(wsframe)
    feed_chunks(parser, SAMPLE, sizes)
    assert sink.events == SAMPLE_EVENTS
    assert parser.buffered_size == 0


@pytest.mark.parametrize("read_size", [1, 3, 7, 64, 1000, 65536])
def test_get_buffer_reads(wsframe: ModuleType, read_size: int) -> None:
    parser, sink = make(wsframe)
    feed_via_buffer(parser, SAMPLE, read_size)
    assert sink.events == SAMPLE_EVENTS
    assert parser.buffered_size == 0


def test_many_frames_in_one_read(wsframe: ModuleType) -> None:
    payloads = [f"message {i}".encode() for i in range(100)]
    parser, sink = make(wsframe)
    buf = parser.get_buffer(-1)
    data = b"".join(client_frame(TEXT, p) for p in payloads)
    buf[: len(data)] = data
    parser.buffer_updated(len(data))
    assert sink.events == [("message", TEXT, p) for p in payloads]


def test_fragmentation_with_interleaved_ping(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe)
    parser.feed_data(client_frame(BINARY, b"one", fin=False))
    parser.feed_data(client_frame(PING, b"p1"))
    assert sink.events == [("ping", b"p1")]
    assert parser.buffered_size == 3
    parser.feed_data(client_frame(CONT, b"", fin=False) + client_frame(CONT, b"two", fin=False))
    parser.feed_data(client_frame(PONG, b"p2") + client_frame(CONT, b"three"))
    assert sink.events == [("ping", b"p1"), ("pong", b"p2"), ("message", BINARY, b"onetwothree")]
    assert parser.buffered_size == 0


def test_unmasked_frames_when_mask_not_required(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe, require_mask=False)
    parser.feed_data(client_frame(TEXT, b"masked") + client_frame(TEXT, b"plain", masked=False))
    assert sink.events == [("message", TEXT, b"masked"), ("message", TEXT, b"plain")]


# -- protocol errors ----------------------------------------------------------------------

ERROR_CASES: list[tuple[str, bytes, int]] = [
    ("unmasked", client_frame(TEXT, b"hi", masked=False), 1002),
    ("rsv1", client_frame(TEXT, b"hi", rsv=0x40), 1002),
    ("rsv2", client_frame(TEXT, b"hi", rsv=0x20), 1002),
    ("rsv3", client_frame(BINARY, b"hi", rsv=0x10), 1002),
    *((f"opcode{op}", client_frame(op, b"x"), 1002) for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15)),
    ("ping not fin", client_frame(PING, b"x", fin=False), 1002),
    ("close not fin", client_frame(CLOSE, b"", fin=False), 1002),
    ("ping 126", client_frame(PING, b"x" * 126), 1002),
    ("pong 65536", client_frame(PONG, b"x" * 65536), 1002),
    ("cont first", client_frame(CONT, b"x"), 1002),
    ("text in fragmented", client_frame(TEXT, b"a", fin=False) + client_frame(TEXT, b"b"), 1002),
    ("binary in fragmented", client_frame(TEXT, b"a", fin=False) + client_frame(BINARY, b""), 1002),
    ("64-bit top bit", b"\x82\xff" + (1 << 63).to_bytes(8, "big") + MASK, 1002),
    ("too big", client_frame(BINARY, b"x" * 1001), 1009),
    (
        "too big fragmented",
        client_frame(BINARY, b"x" * 600, fin=False) + client_frame(CONT, b"x" * 401),
        1009,
    ),
    ("invalid utf8", client_frame(TEXT, b"ok\xff"), 1007),
    ("truncated utf8", client_frame(TEXT, b"ok\xe2\x82"), 1007),
    (
        "truncated utf8 fragmented",
        client_frame(TEXT, b"ok\xf0\x9f", fin=False) + client_frame(CONT, b"\x98"),
        1007,
    ),
    ("close length 1", client_frame(CLOSE, b"\x03"), 1002),
    ("close code 1005", client_frame(CLOSE, close_payload(1005)), 1002),
    ("close reason utf8", client_frame(CLOSE, close_payload(1000, b"\xc0\xaf")), 1007),
]


@pytest.mark.parametrize(
    ("data", "code"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_protocol_errors(wsframe: ModuleType, data: bytes, code: int) -> None:
    trailer = client_frame(TEXT, b"after") + client_frame(PING, b"after")
    for feed in ("whole", "bytes"):
        parser, sink = make(wsframe, max_size=1000)
        if feed == "whole":
            parser.feed_data(data + trailer)
        else:
            for i in range(len(data)):
                parser.feed_data(data[i : i + 1])
            parser.feed_data(trailer)
        assert sink.events == [("error", code)], feed
        assert parser.closed
        assert parser.buffered_size == 0
        assert len(parser.get_buffer(-1)) > 0
        parser.feed_data(trailer)
        assert sink.events == [("error", code)]


@pytest.mark.parametrize("announced", [1001, 65536, 1 << 40])
def test_message_too_big_fails_on_the_header(wsframe: ModuleType, announced: int) -> None:
    frame = client_frame(BINARY, length=announced)  # header and mask only, no payload
    parser, sink = make(wsframe, max_size=1000)
    parser.feed_data(frame)
    assert sink.events == [("error", 1009)]
    # the length alone decides: the mask key need not have arrived
    parser, sink = make(wsframe, max_size=1000)
    parser.feed_data(frame[:-4])
    assert sink.events == [("error", 1009)]


def test_exact_max_size_accepted(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe, max_size=1000)
    parser.feed_data(client_frame(BINARY, b"x" * 600, fin=False) + client_frame(CONT, b"y" * 400))
    assert sink.events == [("message", BINARY, b"x" * 600 + b"y" * 400)]


def test_invalid_utf8_fails_before_the_final_fragment(wsframe: ModuleType) -> None:
    # Autobahn 6.4.1-style: the second fragment holds a code point above U+10FFFF
    parser, sink = make(wsframe)
    parser.feed_data(client_frame(TEXT, "κόσμε".encode(), fin=False))
    assert sink.events == []
    parser.feed_data(client_frame(CONT, b"\xf4\x90\x80\x80", fin=False))
    assert sink.events == [("error", 1007)]
    parser.feed_data(client_frame(CONT, b"edited"))
    assert sink.events == [("error", 1007)]


@pytest.mark.parametrize("bad", [b"\xf4\x90", b"\xed\xa0", b"\xff", b"\xe0\x80", b"\xc3\x28"])
def test_invalid_utf8_fails_inside_a_partial_frame(wsframe: ModuleType, bad: bytes) -> None:
    # Autobahn 6.4.4-style: one frame, chopped; the error comes before the frame is complete
    payload = b"x" * 50 + bad + b"y" * 500
    frame = client_frame(TEXT, payload)
    parser, sink = make(wsframe)
    parser.feed_data(frame[: 8 + 50 + len(bad)])
    assert sink.events == [("error", 1007)]


VALID_UTF8 = [
    b"\x7f",
    b"\xc2\x80",
    b"\xdf\xbf",
    b"\xe0\xa0\x80",
    b"\xed\x9f\xbf",
    b"\xee\x80\x80",
    b"\xef\xbf\xbf",
    b"\xf0\x90\x80\x80",
    b"\xf4\x8f\xbf\xbf",
    "Hello-µ@ßöäüàá-UTF-8!!".encode(),
]
INVALID_UTF8 = [
    b"\x80",
    b"\xbf",
    b"\xc0\xaf",
    b"\xc1\xbf",
    b"\xe0\x80\xaf",
    b"\xe0\x9f\xbf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xf0\x80\x80\xaf",
    b"\xf0\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xfe",
    b"\xff",
    b"\xc2\x41",
    b"\xe2\x82\x41",
    b"\xf0\x9f\x98\x41",
]


@pytest.mark.parametrize("seq", VALID_UTF8 + INVALID_UTF8)
def test_utf8_table(wsframe: ModuleType, seq: bytes) -> None:
    valid = seq in VALID_UTF8
    for payload in (seq, b"0123456789abcdef" + seq + b"0123456789abcdef"):
        parser, sink = make(wsframe)
        parser.feed_data(client_frame(TEXT, payload))
        assert sink.events == ([("message", TEXT, payload)] if valid else [("error", 1007)])
        # one fragment per byte: the validator state must carry across fragments
        parser, sink = make(wsframe)
        frames = [client_frame(CONT, payload[i : i + 1], fin=False) for i in range(len(payload))]
        parser.feed_data(client_frame(TEXT, b"", fin=False) + b"".join(frames))
        parser.feed_data(client_frame(CONT, b""))
        assert sink.events == ([("message", TEXT, payload)] if valid else [("error", 1007)])


def test_utf8_matches_python_decoder(wsframe: ModuleType) -> None:
    rng = random.Random(6455)
    alphabet = [0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE1]
    alphabet += [0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
    for _ in range(600):
        payload = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.5:
            payload = b"a" * rng.randint(0, 20) + payload
        try:
            payload.decode("utf-8")
            expected: list[Event] = [("message", TEXT, payload)]
        except UnicodeDecodeError:
            expected = [("error", 1007)]
        parser, sink = make(wsframe)
        split = rng.randint(0, len(payload))
        parser.feed_data(
            client_frame(TEXT, payload[:split], fin=False) + client_frame(CONT, payload[split:])
        )
        assert sink.events == expected, payload


# -- close frames -------------------------------------------------------------------------

VALID_CLOSE = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000]
VALID_CLOSE += [3999, 4000, 4999]
INVALID_CLOSE = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_CLOSE + INVALID_CLOSE)
def test_close_code_validation(wsframe: ModuleType, code: int) -> None:
    parser, sink = make(wsframe)
    parser.feed_data(client_frame(CLOSE, close_payload(code, "ok ✓".encode())))
    expected = ("close", code, "ok ✓") if code in VALID_CLOSE else ("error", 1002)
    assert sink.events == [expected]
    assert parser.closed


def test_close_without_payload_and_nothing_after(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe)
    parser.feed_data(client_frame(CLOSE) + client_frame(TEXT, b"late") + client_frame(PING))
    assert sink.events == [("close", 1005, "")]
    assert parser.closed and parser.buffered_size == 0
    parser.feed_data(client_frame(TEXT, b"later"))
    assert sink.events == [("close", 1005, "")]


def test_close_between_fragments(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe)
    parser.feed_data(client_frame(TEXT, b"part", fin=False) + client_frame(CLOSE, b"\x03\xe8"))
    assert sink.events == [("close", 1000, "")]
    assert parser.buffered_size == 0


# -- buffering ----------------------------------------------------------------------------


def test_idle_parsers_share_the_scratch_buffer(wsframe: ModuleType) -> None:
    one, _ = make(wsframe)
    two, _ = make(wsframe)
    a = one.get_buffer(-1)
    b = two.get_buffer(-1)
    assert len(a) >= 65536
    a[0] = 0x5A
    assert b[0] == 0x5A
    assert one.buffered_size == two.buffered_size == 0


def test_large_frame_gets_a_buffer_sized_for_it(wsframe: ModuleType) -> None:
    payload = random.Random(1).randbytes(300_000)
    frame = client_frame(BINARY, payload)
    parser, sink = make(wsframe)
    parser.feed_data(frame[:1000])
    assert parser.buffered_size == 1000 - 14  # the header is consumed
    buf = parser.get_buffer(-1)
    assert len(buf) == len(frame) - 1000  # exactly the rest of the frame: no re-copying
    feed_via_buffer(parser, frame[1000:], 65536)
    assert sink.events == [("message", BINARY, payload)]
    assert parser.buffered_size == 0
    assert len(parser.get_buffer(-1)) >= 65536  # back on the shared scratch buffer


def test_buffered_size(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe)
    frame = client_frame(TEXT, b"hello world")
    parser.feed_data(frame[:1])
    assert parser.buffered_size == 1
    assert len(parser.get_buffer(-1)) > 0
    parser.feed_data(frame[1:9])
    assert parser.buffered_size == 3  # header consumed, 3 payload bytes pending
    parser.feed_data(frame[9:])
    assert parser.buffered_size == 0
    parser.feed_data(client_frame(BINARY, b"abc", fin=False) + client_frame(CONT, b"de", fin=False))
    assert parser.buffered_size == 5
    parser.feed_data(client_frame(CONT, b"f"))
    assert parser.buffered_size == 0
    assert sink.events == [("message", TEXT, b"hello world"), ("message", BINARY, b"abcdef")]


def test_header_split_across_reads_in_a_header_buffer(wsframe: ModuleType) -> None:
    # a partial header leaves a small buffer; several frames may then land in it
    frames = [client_frame(TEXT, f"m{i}".encode()) for i in range(40)]
    data = b"".join(frames)
    parser, sink = make(wsframe)
    parser.feed_data(data[:3])
    feed_via_buffer(parser, data[3:], 1 << 20)
    assert sink.events == [("message", TEXT, f"m{i}".encode()) for i in range(40)]
    assert parser.buffered_size == 0


# -- the sink -----------------------------------------------------------------------------


class Releasing(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.parser: Any = None

    def on_message(self, opcode: int, payload: memoryview) -> None:
        super().on_message(opcode, payload)
        self.parser.release()


@pytest.mark.parametrize("split", [False, True])
def test_release_inside_callback_stops_delivery(wsframe: ModuleType, split: bool) -> None:
    sink = Releasing()
    parser = wsframe.FrameParser(sink, BIG)
    sink.parser = parser
    if split:  # the releasing message completes in a per-parser buffer
        frame = client_frame(TEXT, b"x" * 1000)
        parser.feed_data(frame[:500])
        parser.feed_data(frame[500:] + client_frame(PING))
        expected: list[Event] = [("message", TEXT, b"x" * 1000)]
    else:
        parser.feed_data(
            client_frame(TEXT, b"first") + client_frame(TEXT, b"2") + client_frame(PING)
        )
        expected = [("message", TEXT, b"first")]
    assert sink.events == expected
    assert parser.closed and parser.buffered_size == 0
    parser.feed_data(client_frame(TEXT, b"more"))
    parser.release()
    assert sink.events == expected
    assert len(parser.get_buffer(-1)) > 0


def test_payload_view_inside_the_callback(wsframe: ModuleType) -> None:
    seen: list[tuple[bytes, int, bool]] = []

    class Checking(Recorder):
        def on_message(self, opcode: int, payload: memoryview) -> None:
            seen.append((payload.tobytes(), payload.nbytes, payload.c_contiguous))
            assert payload.format == "B" and payload.ndim == 1

    parser = wsframe.FrameParser(Checking(), BIG)
    parser.feed_data(
        client_frame(TEXT, b"single")
        + client_frame(BINARY, b"\x00\xff" * 100)
        + client_frame(BINARY, b"frag", fin=False)
        + client_frame(CONT, b"ment")
    )
    assert seen == [(b"single", 6, True), (b"\x00\xff" * 100, 200, True), (b"fragment", 8, True)]


def test_sink_exception_propagates_and_releases(wsframe: ModuleType) -> None:
    class Boom(Recorder):
        def on_ping(self, payload: bytes) -> None:
            raise RuntimeError("boom")

    parser = wsframe.FrameParser(Boom(), BIG)
    with pytest.raises(RuntimeError, match="boom"):
        parser.feed_data(client_frame(PING, b"x") + client_frame(TEXT, b"y"))
    assert parser.closed and parser.buffered_size == 0


def test_callbacks_are_looked_up_once(wsframe: ModuleType) -> None:
    sink = Recorder()
    parser = wsframe.FrameParser(sink, BIG)
    sink.on_ping = lambda payload: None  # type: ignore[method-assign]
    parser.feed_data(client_frame(PING, b"x"))
    assert sink.events == [("ping", b"x")]
    with pytest.raises(AttributeError):
        wsframe.FrameParser(object(), BIG)


def test_constructor_arguments(wsframe: ModuleType) -> None:
    sink = Recorder()
    wsframe.FrameParser(sink=sink, max_message_size=10, require_mask=False)
    wsframe.FrameParser(sink, 10, inflate=True)
    wsframe.FrameParser(sink, 10, require_mask=True, inflate=False)
    with pytest.raises(TypeError):
        wsframe.FrameParser(sink, 10, False)
    with pytest.raises(ValueError):
        wsframe.FrameParser(sink, 0)


# -- permessage-deflate (inflate=True) --------------------------------------------------------


def deflated(payload: bytes, level: int = 6) -> bytes:
    """A message as an RFC 7692 client compresses it: fresh context, sync flush, tail removed."""
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    data = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


RSV1 = 0x40
TEXT_BODY = ("permessage-deflate ✓ €😀 " * 300).encode()
BIN_BODY = bytes(range(256)) * 40
# Compressed single frames and a compressed message in three fragments (RSV1 on the first only)
# with control frames and an uncompressed message interleaved.
Z_TEXT = deflated(TEXT_BODY)
Z_BIN = deflated(BIN_BODY)
DEFLATE_FRAMES = [
    client_frame(TEXT, Z_TEXT, rsv=RSV1),
    client_frame(TEXT, b"plain text"),
    client_frame(BINARY, Z_BIN[:10], rsv=RSV1, fin=False),
    client_frame(PING, b"mid"),
    client_frame(CONT, Z_BIN[10:50], fin=False),
    client_frame(CONT, b"", fin=False),
    client_frame(CONT, Z_BIN[50:]),
    client_frame(TEXT, b"caf", fin=False),
    client_frame(CONT, "é".encode()),
    client_frame(BINARY, b"\x00", rsv=RSV1),  # an empty message, compressed
    client_frame(TEXT, b"", rsv=RSV1),  # an empty payload: inflates to nothing
    client_frame(CLOSE, close_payload(1000)),
]
DEFLATE_EVENTS: list[Event] = [
    ("message", TEXT, TEXT_BODY),
    ("message", TEXT, b"plain text"),
    ("ping", b"mid"),
    ("message", BINARY, BIN_BODY),
    ("message", TEXT, "café".encode()),
    ("message", BINARY, b""),
    ("message", TEXT, b""),
    ("close", 1000, ""),
]
DEFLATE_SAMPLE = b"".join(DEFLATE_FRAMES)


def test_inflate_whole_read(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe, inflate=True)
    parser.feed_data(DEFLATE_SAMPLE)
    assert sink.events == DEFLATE_EVENTS
    assert parser.buffered_size == 0


def test_inflate_byte_by_byte(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe, inflate=True)
    for i in range(len(DEFLATE_SAMPLE)):
        parser.feed_data(DEFLATE_SAMPLE[i : i + 1])
    assert sink.events == DEFLATE_EVENTS


@pytest.mark.parametrize("seed", range(6))
def test_inflate_random_splits(wsframe: ModuleType, seed: int) -> None:
    rng = random.Random(seed)
    sizes = [rng.choice([1, 2, 7, 100, 1000]) for _ in range(80)]
    parser, sink = make(wsframe, inflate=True)
    feed_chunks(parser, DEFLATE_SAMPLE, sizes)
    assert sink.events == DEFLATE_EVENTS
    assert parser.buffered_size == 0


@pytest.mark.parametrize("read_size", [1, 5, 64, 65536])
def test_inflate_get_buffer_reads(wsframe: ModuleType, read_size: int) -> None:
    parser, sink = make(wsframe, inflate=True)
    feed_via_buffer(parser, DEFLATE_SAMPLE, read_size)
    assert sink.events == DEFLATE_EVENTS


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
@pytest.mark.parametrize("n", LENGTHS)
def test_inflate_length_boundaries(wsframe: ModuleType, opcode: int, n: int) -> None:
    payload = utf8_payload(n) if opcode == TEXT else random.Random(n).randbytes(n)
    parser, sink = make(wsframe, inflate=True)
    parser.feed_data(client_frame(opcode, deflated(payload), rsv=RSV1))
    assert sink.events == [("message", opcode, payload)]
    assert parser.buffered_size == 0


def test_inflate_fragment_boundaries_inside_utf8(wsframe: ModuleType) -> None:
    # Compressed fragments are not UTF-8 on their own: only the inflated message is checked.
    body = "€" * 1000
    data = deflated(body.encode(), level=0)  # stored: fragments cut through characters
    parser, sink = make(wsframe, inflate=True)
    frames = [client_frame(TEXT, data[:301], rsv=RSV1, fin=False)]
    frames += [client_frame(CONT, data[i : i + 301], fin=False) for i in range(301, len(data), 301)]
    frames.append(client_frame(CONT, b""))
    parser.feed_data(b"".join(frames))
    assert sink.events == [("message", TEXT, body.encode())]


def test_inflate_stream_ending_with_a_final_block(wsframe: ModuleType) -> None:
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    data = c.compress(b"final block") + c.flush()  # BFINAL set, no tail (RFC 7692 §7.2.3.3)
    parser, sink = make(wsframe, inflate=True)
    parser.feed_data(client_frame(BINARY, data, rsv=RSV1))
    assert sink.events == [("message", BINARY, b"final block")]


def test_uncompressed_messages_keep_failing_fast(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe, inflate=True)
    parser.feed_data(client_frame(TEXT, b"ok\xf4\x90", fin=False))
    assert sink.events == [("error", 1007)]


BOMB = deflated(b"\x00" * 2_000_000, level=9)
BAD_UTF8 = deflated(b"valid then \xc0\xaf")

DEFLATE_ERROR_CASES: list[tuple[str, bytes, int]] = [
    (
        "rsv1 on continuation",
        client_frame(TEXT, Z_TEXT[:5], rsv=RSV1, fin=False)
        + client_frame(CONT, Z_TEXT[5:], rsv=RSV1),
        1002,
    ),
    (
        "rsv1 on plain continuation",
        client_frame(TEXT, b"a", fin=False) + client_frame(CONT, b"b", rsv=RSV1),
        1002,
    ),
    ("rsv1 on ping", client_frame(PING, b"x", rsv=RSV1), 1002),
    ("rsv1 on pong", client_frame(PONG, b"x", rsv=RSV1), 1002),
    ("rsv1 on close", client_frame(CLOSE, close_payload(1000), rsv=RSV1), 1002),
    ("rsv2", client_frame(TEXT, Z_TEXT, rsv=0x20), 1002),
    ("rsv3", client_frame(BINARY, Z_BIN, rsv=0x10), 1002),
    ("rsv1+rsv2", client_frame(BINARY, Z_BIN, rsv=0x60), 1002),
    ("compressed too big", client_frame(BINARY, b"x" * 1001, rsv=RSV1), 1009),
    ("inflated too big", client_frame(BINARY, deflated(b"y" * 1001), rsv=RSV1), 1009),
    (
        "deflate bomb",
        client_frame(BINARY, BOMB[:900], rsv=RSV1, fin=False) + client_frame(CONT, BOMB[900:990]),
        1009,
    ),
    ("bad deflate", client_frame(BINARY, b"\xff\xff\xff", rsv=RSV1), 1007),
    (
        "bad deflate fragmented",
        client_frame(TEXT, b"\x00\x05\x00", rsv=RSV1, fin=False)
        + client_frame(CONT, b"\x00\x00hello"),
        1007,
    ),
    ("invalid utf8 inflated", client_frame(TEXT, BAD_UTF8, rsv=RSV1), 1007),
    ("truncated utf8 inflated", client_frame(TEXT, deflated(b"ok\xe2\x82"), rsv=RSV1), 1007),
]


@pytest.mark.parametrize(
    ("data", "code"),
    [c[1:] for c in DEFLATE_ERROR_CASES],
    ids=[c[0] for c in DEFLATE_ERROR_CASES],
)
def test_inflate_protocol_errors(wsframe: ModuleType, data: bytes, code: int) -> None:
    assert len(BOMB) > 990
    trailer = client_frame(TEXT, b"after") + client_frame(PING, b"after")
    for feed in ("whole", "bytes"):
        parser, sink = make(wsframe, max_size=1000, inflate=True)
        if feed == "whole":
            parser.feed_data(data + trailer)
        else:
            for i in range(len(data)):
                parser.feed_data(data[i : i + 1])
            parser.feed_data(trailer)
        assert sink.events == [("error", code)], feed
        assert parser.closed and parser.buffered_size == 0


def test_exact_max_size_once_inflated(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe, max_size=1000, inflate=True)
    parser.feed_data(client_frame(BINARY, deflated(b"z" * 1000), rsv=RSV1))
    assert sink.events == [("message", BINARY, b"z" * 1000)]


def test_rsv1_refused_without_inflate(wsframe: ModuleType) -> None:
    for opcode, data in ((TEXT, Z_TEXT), (BINARY, Z_BIN)):
        parser, sink = make(wsframe)
        parser.feed_data(client_frame(opcode, data, rsv=RSV1))
        assert sink.events == [("error", 1002)]


def test_buffered_size_of_a_compressed_message(wsframe: ModuleType) -> None:
    parser, sink = make(wsframe, inflate=True)
    parser.feed_data(client_frame(BINARY, Z_BIN[:30], rsv=RSV1, fin=False))
    assert parser.buffered_size == 30
    parser.feed_data(client_frame(CONT, Z_BIN[30:]))
    assert sink.events == [("message", BINARY, BIN_BODY)]
    assert parser.buffered_size == 0


# -- the public surface -------------------------------------------------------------------


def _stub_signatures() -> dict[str, list[tuple[str, str, bool]]]:
    """Parameter (name, kind, has default) per public callable in _wsframe_c.pyi."""
    # Next to the imported package, so a run against an installed wheel checks the shipped stub.
    import centrifugo_fast.protocol

    stub = Path(centrifugo_fast.protocol.__file__).parent / "_wsframe_c.pyi"
    tree = ast.parse(stub.read_text())

    def params(fn: ast.FunctionDef) -> list[tuple[str, str, bool]]:
        args = fn.args
        out = []
        defaults = [None] * (len(args.args) - len(args.defaults)) + list(args.defaults)
        for arg, default in zip(args.args, defaults, strict=True):
            out.append((arg.arg, "POSITIONAL_OR_KEYWORD", default is not None))
        for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            out.append((arg.arg, "KEYWORD_ONLY", kw_default is not None))
        return out

    found: dict[str, list[tuple[str, str, bool]]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            found[node.name] = params(node)
        elif isinstance(node, ast.ClassDef):
            found[node.name] = []
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    is_property = any(
                        isinstance(d, ast.Name) and d.id == "property" for d in item.decorator_list
                    )
                    key = f"{node.name}.{item.name}"
                    found[key] = [("<property>", "", False)] if is_property else params(item)
    return found


def test_public_surface_matches_the_stub(wsframe: ModuleType) -> None:
    stub = _stub_signatures()
    assert sorted(wsframe.__all__) == sorted(k for k in stub if "." not in k)
    public_members = {
        n for n in dir(wsframe.FrameParser) if not n.startswith("_") or n == "__init__"
    }
    assert public_members == {k.split(".")[1] for k in stub if k.startswith("FrameParser.")}
    for key, expected in stub.items():
        if key == "FrameParser" or key == "FrameParser.__init__":
            continue  # checked by test_constructor_arguments (cdef class __init__ has no signature)
        obj: Any = wsframe
        for part in key.split("."):
            obj = getattr(obj, part)
        if expected == [("<property>", "", False)]:
            descriptor = inspect.getattr_static(wsframe.FrameParser, key.split(".")[1])
            assert isinstance(descriptor, property | GetSetDescriptorType), key
            continue
        actual = [
            (p.name, p.kind.name, p.default is not inspect.Parameter.empty)
            for p in inspect.signature(obj).parameters.values()
        ]
        assert actual == expected, key


def test_twins_expose_the_same_surface() -> None:
    compiled = load_twin(
        "c", "centrifugo_fast.protocol._wsframe_c", "centrifugo_fast.protocol._wsframe_py"
    )
    pure = load_twin(
        "py", "centrifugo_fast.protocol._wsframe_c", "centrifugo_fast.protocol._wsframe_py"
    )
    assert compiled.__all__ == pure.__all__

    def surface(module: ModuleType) -> dict[str, list[tuple[str, str, bool]] | None]:
        found: dict[str, list[tuple[str, str, bool]] | None] = {}
        members = [(n, getattr(module, n)) for n in module.__all__]
        members += [
            (f"FrameParser.{n}", getattr(module.FrameParser, n))
            for n in dir(module.FrameParser)
            if not n.startswith("_")
        ]
        for name, obj in members:
            if isinstance(obj, type) or not callable(obj):
                found[name] = None
                continue
            found[name] = [
                (p.name, p.kind.name, p.default is not inspect.Parameter.empty)
                for p in inspect.signature(obj).parameters.values()
            ]
        return found

    assert surface(compiled) == surface(pure)
