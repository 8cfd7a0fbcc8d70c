"""permessage-deflate (RFC 7692): offer parsing, negotiation, compress and inflate, sans I/O."""

from __future__ import annotations

import os
import random
import zlib

import pytest

from centrifugo_fast.protocol.deflate import (
    DeflateConfig,
    DeflateParams,
    InflatedTooBig,
    InflateError,
    InvalidDeflateData,
    compress,
    inflate,
    negotiate,
    parse_extensions,
)

ON = DeflateConfig(enabled=True, level=1, min_size=0)
BOTH_OFF = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


def sync_flushed(payload: bytes, level: int = 6, wbits: int = 15) -> bytes:
    """What a client compressing with a fresh context sends (tail removed, RFC 7692 §7.2.1)."""
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    data = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


# -- parsing Sec-WebSocket-Extensions -------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("permessage-deflate", [("permessage-deflate", [])]),
        (
            "permessage-deflate; client_max_window_bits",
            [("permessage-deflate", [("client_max_window_bits", None)])],
        ),
        (
            "Permessage-Deflate ;Server_Max_Window_Bits = 10 ; client_no_context_takeover",
            [
                (
                    "permessage-deflate",
                    [("server_max_window_bits", "10"), ("client_no_context_takeover", None)],
                )
            ],
        ),
        (
            'x-foo; a="b", permessage-deflate; server_max_window_bits="12"',
            [
                ("x-foo", [("a", "b")]),
                ("permessage-deflate", [("server_max_window_bits", "12")]),
            ],
        ),
        # Escapes inside a quoted value; the unquoted result must still be a token.
        ('e; p="a\\bc"', [("e", [("p", "abc")])]),
        ('e; p="a,b", f', [("f", [])]),
        ('e; p="a;b"; q, f', [("f", [])]),
        # Empty list elements are allowed; malformed elements are skipped, not fatal.
        (" , permessage-deflate ,, ", [("permessage-deflate", [])]),
        ("permessage-deflate;, f", [("f", [])]),
        ("permessage deflate, f", [("f", [])]),
        ("@bad, f; =1, g; h=", []),
        ('f; p="unterminated, g', []),
        ('f; p="x"y, g', [("g", [])]),
        ("", []),
    ],
)
def test_parse_extensions(header: str, expected: list[object]) -> None:
    assert parse_extensions(header) == expected


# -- negotiation ----------------------------------------------------------------------------


def test_no_offer_or_disabled() -> None:
    assert negotiate(None, ON) is None
    assert negotiate("", ON) is None
    assert negotiate("x-webkit-deflate-frame", ON) is None
    assert negotiate("permessage-deflate", None) is None
    assert negotiate("permessage-deflate", DeflateConfig(enabled=False)) is None


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=10",
        "permessage-deflate; client_no_context_takeover",
        "permessage-deflate; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        'permessage-deflate; client_max_window_bits="8"',
    ],
)
def test_both_context_takeovers_always_off(offer: str) -> None:
    # RFC 7692 §7.1.1.1 and §7.1.1.2: a server may add either parameter unasked.
    result = negotiate(offer, ON)
    assert result is not None
    params, response = result
    assert response == BOTH_OFF
    assert params == DeflateParams(level=1, min_size=0, server_max_window_bits=15)


@pytest.mark.parametrize("bits", range(9, 16))
def test_server_max_window_bits_honoured_and_echoed(bits: int) -> None:
    result = negotiate(f"permessage-deflate; server_max_window_bits={bits}", ON)
    assert result is not None
    params, response = result
    assert params.server_max_window_bits == bits
    assert response == f"{BOTH_OFF}; server_max_window_bits={bits}"


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; server_max_window_bits=8",  # zlib raw deflate cannot do 256 B
        "permessage-deflate; server_max_window_bits",  # a value is required
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=010",  # no leading zero
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=abc",
        "permessage-deflate; client_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover=true",
        "permessage-deflate; client_max_window_bits; client_max_window_bits",  # twice
        "permessage-deflate; mystery",
    ],
)
def test_offers_declined(offer: str) -> None:
    assert negotiate(offer, ON) is None


def test_first_acceptable_offer_wins() -> None:
    header = (
        "x-foo, permessage-deflate; server_max_window_bits=8, "
        "permessage-deflate; bogus, permessage-deflate; server_max_window_bits=11, "
        "permessage-deflate"
    )
    result = negotiate(header, ON)
    assert result is not None
    assert result[0].server_max_window_bits == 11
    assert result[1].endswith("; server_max_window_bits=11")


def test_config_carries_into_params() -> None:
    config = DeflateConfig(enabled=True, level=6, min_size=128)
    result = negotiate("permessage-deflate", config)
    assert result is not None
    assert result[0] == DeflateParams(level=6, min_size=128, server_max_window_bits=15)
    assert hash(result[0]) == hash(DeflateParams(6, 128, 15))


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        DeflateConfig(enabled=True, level=10)
    with pytest.raises(ValueError):
        DeflateConfig(enabled=True, min_size=-1)


def test_should_compress_follows_centrifugo() -> None:
    # Centrifugo: with compression_min_size > 0, only messages longer than it are compressed.
    assert DeflateParams(min_size=0).should_compress(0)
    assert DeflateParams(min_size=0).should_compress(10)
    assert not DeflateParams(min_size=100).should_compress(100)
    assert DeflateParams(min_size=100).should_compress(101)


# -- compress -------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0, 1, 6, 9])
@pytest.mark.parametrize("wbits", [9, 12, 15])
@pytest.mark.parametrize("n", [0, 1, 1000, 70_000])
def test_compress_round_trip(level: int, wbits: int, n: int) -> None:
    rng = random.Random(n)
    payload = (rng.randbytes(n // 3) + b'{"a":1}' * n)[:n]
    data = compress(payload, level, wbits)
    assert not data.endswith(b"\x00\x00\xff\xff")
    # Any RFC 7692 receiver: append the tail, inflate with the negotiated window.
    d = zlib.decompressobj(-wbits)
    assert d.decompress(data + b"\x00\x00\xff\xff") == payload
    assert inflate(data, max(n, 1)) == payload


def test_compress_is_deterministic_and_fresh() -> None:
    # No context takeover: the same payload gives the same bytes every time.
    payload = b'{"channel":"news","data":{"text":"hello hello hello"}}'
    first = compress(payload)
    assert compress(payload) == first
    assert compress(b"") == b"\x00"
    assert len(compress(b"x" * 10_000)) < 100


@pytest.mark.parametrize("n", [100, 1000, 5000, 30_000])
def test_compress_window_reaches_the_first_byte(n: int) -> None:
    # The compressor is sized to the message, but a repeat of its first half is still found.
    half = random.Random(n).randbytes(n // 2)
    data = compress(half + half)
    assert len(data) < n // 2 + n // 25 + 16  # literals of the first half, one long match
    assert len(data) <= len(sync_flushed(half + half, level=1)) + 2  # as good as zlib's default
    assert inflate(data, n) == half + half


def test_compress_accepts_buffers() -> None:
    payload = b"abc" * 100
    assert compress(bytearray(payload)) == compress(memoryview(payload)) == compress(payload)


# -- inflate --------------------------------------------------------------------------------


def test_inflate_client_streams() -> None:
    payload = os.urandom(500) + b"hello " * 2000
    assert inflate(sync_flushed(payload), len(payload)) == payload
    # RFC 7692 §7.2.3.1 example: "Hello" in one block.
    assert inflate(bytes.fromhex("f248cdc9c90700"), 5) == b"Hello"
    # §7.2.3.2: the same with no compression (a stored block).
    assert inflate(bytes.fromhex("000500faff48656c6c6f00"), 5) == b"Hello"
    # §7.2.3.3: a stream ending with a BFINAL block (no tail needed).
    assert inflate(bytes.fromhex("f348cdc9c90700"), 5) == b"Hello"
    # An empty message.
    assert inflate(b"\x00", 1) == b""
    assert inflate(b"", 1) == b""


def test_inflate_exact_limit() -> None:
    payload = b"a" * 1000
    assert inflate(sync_flushed(payload), 1000) == payload
    with pytest.raises(InflatedTooBig):
        inflate(sync_flushed(payload), 999)


def test_deflate_bomb_is_stopped_at_the_limit() -> None:
    bomb = sync_flushed(b"\x00" * 50_000_000, level=9)
    assert len(bomb) < 60_000
    with pytest.raises(InflatedTooBig):
        inflate(bomb, 65536)


def test_unstripped_tail_is_harmless() -> None:
    # A sender that forgets to strip 00 00 ff ff only adds one more empty stored block.
    payload = b"tail " * 100
    assert inflate(sync_flushed(payload) + b"\x00\x00\xff\xff", 500) == payload


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xff\xff\xff",  # reserved block type
        b"\x00\x05\x00\x00\x00hello",  # stored block whose NLEN is not ~LEN
        bytes.fromhex("f348cdc9c90700") + b"junk",  # bytes after the final block
    ],
)
def test_invalid_streams(data: bytes) -> None:
    with pytest.raises(InvalidDeflateData):
        inflate(data, 1 << 20)
    assert issubclass(InvalidDeflateData, InflateError)
    assert issubclass(InflatedTooBig, InflateError)


def test_inflate_accepts_buffers() -> None:
    data = sync_flushed(b"buffers " * 50)
    assert inflate(bytearray(data), 400) == inflate(memoryview(data), 400) == b"buffers " * 50
