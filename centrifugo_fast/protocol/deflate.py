"""permessage-deflate (RFC 7692), sans I/O: offer negotiation, compress and inflate one message.

What this server agrees to, whatever the client offers:

* ``server_no_context_takeover`` (RFC 7692 §7.1.1.1 lets a server add it unasked): every
  message we send is compressed on its own, so one compressed frame of a publication is the
  same bytes for every subscriber and is built once (design.md §4), and no compressor lives on
  an idle connection.
* ``client_no_context_takeover`` (§7.1.1.2: "A server MAY include the
  client_no_context_takeover extension parameter in an extension negotiation response even if
  the extension negotiation offer being accepted by the response doesn't include" it): the
  client compresses every message on its own, so we keep no inflate window per connection
  (design.md §5) and inflate each message with a fresh decompressor.
* ``server_max_window_bits=N`` only when offered (§7.1.2.1), echoing N; N = 8 is declined
  because zlib cannot produce raw deflate with a 256-byte window (it silently uses 512).
* ``client_max_window_bits`` (with or without a value) is accepted and not echoed
  (§7.1.2.2 forbids echoing it when unoffered, and we never need to limit it): we inflate
  with the largest window, which reads any smaller one.

Size limits are enforced while inflating: `inflate` never produces more than
``max_size + 1`` bytes, so a small "deflate bomb" cannot allocate beyond the limit.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

__all__ = [
    "DeflateConfig",
    "DeflateParams",
    "InflateError",
    "InflatedTooBig",
    "InvalidDeflateData",
    "compress",
    "inflate",
    "negotiate",
    "parse_extensions",
]

EXTENSION = "permessage-deflate"

#: What a sync flush ends with: removed by the sender, put back by the receiver (§7.2.1, §7.2.2).
_TAIL = b"\x00\x00\xff\xff"

#: Smallest window zlib can produce raw deflate for (§7.1.2.1 allows 8; zlib does not).
MIN_WINDOW_BITS = 9
MAX_WINDOW_BITS = 15
#: zlib cannot match farther back than the window size minus this (MIN_LOOKAHEAD in deflate.h).
_MIN_LOOKAHEAD = 262

_TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WINDOW_VALUES = {str(n): n for n in range(8, 16)}  # decimal, no leading zero (§7.1.2)


@dataclass(frozen=True, slots=True)
class DeflateConfig:
    """What a listener allows (config `websocket.compression*`)."""

    enabled: bool = False
    #: zlib compression level for outgoing messages (1 fastest .. 9 smallest; 0 stores).
    level: int = 1
    #: Outgoing messages of at most this many bytes go uncompressed (0: compress all).
    min_size: int = 0

    def __post_init__(self) -> None:
        if not -1 <= self.level <= 9:
            raise ValueError(f"compression level must be -1..9, got {self.level}")
        if self.min_size < 0:
            raise ValueError("compression min size must be >= 0")


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """What one connection negotiated; hashable, so it can key a shared compressed frame.

    Both context takeovers are always off (see the module docstring), so the only thing
    that differs between connections is the window our frames may use.
    """

    level: int = 1
    min_size: int = 0
    #: The LZ77 window (base-2 log) our compressed frames use.
    server_max_window_bits: int = MAX_WINDOW_BITS

    def should_compress(self, size: int) -> bool:
        """True when an outgoing message of `size` bytes is sent compressed.

        As Centrifugo: with a min size set, only messages longer than it are compressed.
        """
        return self.min_size == 0 or size > self.min_size


class InflateError(ValueError):
    """A compressed message could not be inflated."""


class InvalidDeflateData(InflateError):
    """The message is not a valid deflate stream (close code 1007)."""


class InflatedTooBig(InflateError):
    """The inflated message would exceed the size limit (close code 1009)."""


# -- Sec-WebSocket-Extensions ---------------------------------------------------------------


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` outside quoted strings (an unclosed quote runs to the end)."""
    parts: list[str] = []
    start = 0
    i = 0
    n = len(text)
    quoted = False
    while i < n:
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == sep:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _is_token(text: str) -> bool:
    return bool(text) and all(c in _TCHARS for c in text)


def _param(text: str) -> tuple[str, str | None] | None:
    """Parse ``name`` or ``name=token`` or ``name="quoted"``; None when malformed."""
    name, eq, value = text.partition("=")
    name = name.strip(" \t")
    if not _is_token(name):
        return None
    if not eq:
        return name.lower(), None
    value = value.strip(" \t")
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        chars: list[str] = []
        inner = value[1:-1]
        i = 0
        while i < len(inner):
            c = inner[i]
            if c == "\\":
                i += 1
                if i == len(inner):
                    return None
                c = inner[i]
            elif c == '"':
                return None
            chars.append(c)
            i += 1
        value = "".join(chars)
    # RFC 6455 §9.1: a quoted value must still be a token once unquoted.
    if not _is_token(value):
        return None
    return name.lower(), value


def parse_extensions(header: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every well-formed offer in a Sec-WebSocket-Extensions value, in order.

    Returns ``[(extension name lower-cased, [(param name lower-cased, value or None)])]``;
    malformed elements are skipped, the others kept (a header may be several joined by ",").
    """
    offers: list[tuple[str, list[tuple[str, str | None]]]] = []
    for element in _split(header, ","):
        if not element.strip(" \t"):
            continue  # empty list elements are allowed (RFC 9110 §5.6.1)
        pieces = _split(element, ";")
        name = pieces[0].strip(" \t")
        if not _is_token(name):
            continue
        params: list[tuple[str, str | None]] = []
        for piece in pieces[1:]:
            param = _param(piece)
            if param is None:
                break
            params.append(param)
        else:
            offers.append((name.lower(), params))
    return offers


def _accept(params: list[tuple[str, str | None]], config: DeflateConfig) -> DeflateParams | None:
    """The parameters we answer one permessage-deflate offer with; None declines it (§5.1)."""
    seen: set[str] = set()
    window = MAX_WINDOW_BITS
    for name, value in params:
        if name in seen:
            return None  # a parameter given twice
        seen.add(name)
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                return None
        elif name == "server_max_window_bits":
            bits = _WINDOW_VALUES.get(value or "")
            if bits is None or bits < MIN_WINDOW_BITS:
                return None
            window = bits
        elif name == "client_max_window_bits":
            if value is not None and value not in _WINDOW_VALUES:
                return None
        else:
            return None  # not a parameter of this extension
    return DeflateParams(config.level, config.min_size, window)


def negotiate(
    offer_header: str | None, config: DeflateConfig | None
) -> tuple[DeflateParams, str] | None:
    """Accept the first acceptable permessage-deflate offer.

    Returns the negotiated parameters and the Sec-WebSocket-Extensions response value, or
    None (compression off, nothing offered, or every offer declined).
    """
    if config is None or not config.enabled or not offer_header:
        return None
    for name, params in parse_extensions(offer_header):
        if name != EXTENSION:
            continue
        accepted = _accept(params, config)
        if accepted is None:
            continue
        response = f"{EXTENSION}; server_no_context_takeover; client_no_context_takeover"
        if any(p == "server_max_window_bits" for p, _ in params):
            response += f"; server_max_window_bits={accepted.server_max_window_bits}"
        return accepted, response
    return None


# -- one message ---------------------------------------------------------------------------


def compress(
    payload: bytes | bytearray | memoryview, level: int = 1, wbits: int = MAX_WINDOW_BITS
) -> bytes:
    """Compress one whole message with a fresh compressor (no context takeover).

    Raw deflate ending in a sync flush whose trailing ``00 00 ff ff`` is removed (§7.2.1).
    The result depends only on the arguments, so it can be shared between connections.

    The compressor is sized for the message: a window just big enough to reach back to its
    first byte (never above `wbits`, the negotiated maximum) and a matching hash size. Setting
    up zlib's default 256 KB of state costs ~60 us, more than compressing 1 KiB; a 2 KiB
    window with memLevel 4 gives the same output for ~10 us.
    """
    size = payload.nbytes if isinstance(payload, memoryview) else len(payload)
    bits = max(MIN_WINDOW_BITS, min(wbits, (size + _MIN_LOOKAHEAD).bit_length()))
    compressor = zlib.compressobj(level, zlib.DEFLATED, -bits, max(1, min(8, bits - 7)))
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    # A sync flush always ends with the empty stored block.
    return data[:-4]


def inflate(data: bytes | bytearray | memoryview, max_size: int) -> bytes:
    """Inflate one compressed message (the payloads of its frames joined).

    A fresh decompressor per message (``client_no_context_takeover``); output is produced
    at most ``max_size + 1`` bytes at a time, so a deflate bomb never allocates beyond the
    limit. Raises InflatedTooBig past `max_size`, InvalidDeflateData on a bad stream.
    """
    decompressor = zlib.decompressobj(-MAX_WINDOW_BITS)
    budget = max_size + 1
    try:
        out = decompressor.decompress(data, budget)
        if len(out) > max_size or decompressor.unconsumed_tail:
            raise InflatedTooBig(f"inflated message exceeds {max_size} bytes")
        if decompressor.eof:
            # The message ended its stream with a BFINAL block (§7.2.3.3): the tail we
            # would append is not needed, and nothing may follow the final block.
            if decompressor.unused_data:
                raise InvalidDeflateData("data after the final deflate block")
            return out
        more = decompressor.decompress(_TAIL, budget - len(out))
    except zlib.error as exc:
        raise InvalidDeflateData(f"invalid deflate data: {exc}") from None
    if more:
        out += more
        if len(out) > max_size or decompressor.unconsumed_tail:
            raise InflatedTooBig(f"inflated message exceeds {max_size} bytes")
    return out
