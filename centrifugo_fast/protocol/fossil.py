"""Fossil delta encoding and decoding (spec/client-protocol.md §10).

A delta turns a *source* byte string into a *target* byte string::

    <target length>\\n
    <count>@<offset>,        copy `count` bytes of the source starting at `offset`
    <count>:<count bytes>    insert `count` literal bytes
    ...
    <checksum>;              sum of the target's big-endian 32-bit words, modulo 2**32

Numbers are written most significant digit first in base 64 with the digit alphabet
``0-9 A-Z _ a-z ~``.

The encoder indexes the source by non-overlapping 16-byte blocks and slides a 16-byte window
over the target; a window equal to a source block is a match candidate, which is then extended
backwards (into the pending literal run) and forwards as far as the bytes agree. The block index
is a dict keyed by the block bytes themselves rather than by a hand-rolled rolling hash: in pure
Python slicing a window and hashing it happen in C, which is several times faster than updating
a rolling hash byte by byte, and the dict never yields false candidates. Besides the indexed
block, the source bytes on the previous copy's diagonal are tried (the usual continuation after
an edit), a short match looks up to a block further on for a longer one, and a shared prefix and
suffix shorter than a block are still copied. Match extension compares whole slices (memcmp)
and locates the first differing byte with an XOR of the two slices read as integers, so long
matches cost a few C calls.

With ``json_safe=True`` the delta is guaranteed to be valid UTF-8 (it travels inside a JSON
string): every copy starts and ends on a character boundary of the target (and of the source),
so every literal run holds whole characters.
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["apply_delta", "checksum", "create_delta"]

_DIGITS = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~"
_VALUE = [-1] * 256
for _i, _c in enumerate(_DIGITS):
    _VALUE[_c] = _i
del _i, _c

_NHASH = 16  # block size of the source index and width of the target window
_MIN_GALLOP = 64  # first chunk size when extending a match
_LAZY = 4 * _NHASH  # matches shorter than this look a little further for a longer one

_MAX_DIGITS = 11  # 66 bits: more than any length, offset or checksum needs
_NL, _AT, _COMMA, _COLON, _SEMI = 0x0A, 0x40, 0x2C, 0x3A, 0x3B


_ONE_DIGIT = [_DIGITS[i : i + 1] for i in range(64)]


def _b64(value: int) -> bytes:
    """`value` (>= 0) in the delta's base-64 notation."""
    if value < 64:
        return _ONE_DIGIT[value]
    if value < 4096:
        return _ONE_DIGIT[value >> 6] + _ONE_DIGIT[value & 63]
    digits: list[bytes] = []
    while value:
        digits.append(_ONE_DIGIT[value & 63])
        value >>= 6
    digits.reverse()
    return b"".join(digits)


# --- checksum -------------------------------------------------------------------------------

# Sum of the big-endian words = sum over lanes k (bytes at index = k mod 4) of
# lane_sum(k) << (24 - 8k). A lane sum is computed exactly in C: split every byte into its high
# and low nibble (bytes.translate) and sum each nibble string with adler32, whose first half is
# the byte sum modulo 65521 -- exact while a lane holds at most 65520 // 15 = 4368 bytes.
_HIGH = bytes(v >> 4 for v in range(256))
_LOW = bytes(v & 15 for v in range(256))
_CHUNK = 4 * (65520 // 15)


def checksum(data: bytes) -> int:
    """The fossil checksum of `data`: its big-endian 32-bit words summed modulo 2**32."""
    adler = zlib.adler32
    total = 0
    size = len(data)
    for start in range(0, size, _CHUNK):
        part = data[start : start + _CHUNK] if size > _CHUNK else data
        high = part.translate(_HIGH)
        low = part.translate(_LOW)
        for lane in range(4):
            lane_sum = ((adler(high[lane::4], 0) & 0xFFFF) << 4) + (adler(low[lane::4], 0) & 0xFFFF)
            total += lane_sum << (24 - 8 * lane)
    return total & 0xFFFFFFFF


# --- match extension ------------------------------------------------------------------------


def _extend_forward(a: bytes, i: int, b: bytes, j: int, limit: int) -> int:
    """Length of the common prefix of a[i:] and b[j:], at most `limit`."""
    done = 0
    step = _MIN_GALLOP
    while done < limit:
        size = min(step, limit - done)
        chunk_a = a[i + done : i + done + size]
        chunk_b = b[j + done : j + done + size]
        if chunk_a != chunk_b:
            diff = int.from_bytes(chunk_a, "big") ^ int.from_bytes(chunk_b, "big")
            return done + size - ((diff.bit_length() + 7) >> 3)
        done += size
        step <<= 2
    return done


def _extend_backward(a: bytes, i: int, b: bytes, j: int, limit: int) -> int:
    """Length of the common suffix of a[:i] and b[:j], at most `limit` (<= min(i, j))."""
    done = 0
    step = _MIN_GALLOP
    while done < limit:
        size = min(step, limit - done)
        chunk_a = a[i - done - size : i - done]
        chunk_b = b[j - done - size : j - done]
        if chunk_a != chunk_b:
            diff = int.from_bytes(chunk_a, "little") ^ int.from_bytes(chunk_b, "little")
            return done + size - ((diff.bit_length() + 7) >> 3)
        done += size
        step <<= 2
    return done


def _is_continuation(data: bytes, pos: int) -> bool:
    """Whether data[pos] is a UTF-8 continuation byte (so `pos` splits a character)."""
    return pos < len(data) and data[pos] & 0xC0 == 0x80


def _utf8_trim(source: bytes, s: int, target: bytes, t: int, length: int) -> tuple[int, int, int]:
    """Shrink the copy (s, t, length) until both ends sit on character boundaries."""
    while length and _is_continuation(target, t):
        s += 1
        t += 1
        length -= 1
    # The copied bytes equal the target's, so the start is a boundary on the source side too.
    while length and (_is_continuation(target, t + length) or _is_continuation(source, s + length)):
        length -= 1
    return s, t, length


def _copy_cost(length: int, offset: int) -> int:
    """Bytes taken by a copy command, plus the literal header it may split off."""
    return ((length.bit_length() + 5) // 6 or 1) + ((offset.bit_length() + 5) // 6 or 1) + 5


# --- encoder --------------------------------------------------------------------------------


def _index_source(source: bytes) -> dict[bytes, int]:
    """Map each 16-byte block of the source to the offset of its first occurrence."""
    count = len(source) // _NHASH
    blocks = struct.unpack_from(f"{_NHASH}s" * count, source)  # the fastest way to cut them
    # dict() keeps the last value of a repeated key: fed backwards, the first offset wins.
    return dict(zip(reversed(blocks), range((count - 1) * _NHASH, -1, -_NHASH), strict=True))


def create_delta(source: bytes, target: bytes, *, json_safe: bool = False) -> bytes:
    """A fossil delta that rebuilds `target` from `source`.

    With `json_safe` the delta is valid UTF-8 (`target` must be valid UTF-8, else ValueError).
    """
    if json_safe:
        try:
            target.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"json_safe delta needs a UTF-8 target: {exc}") from None
    n = len(source)
    m = len(target)
    out: list[bytes] = [_b64(m), b"\n"]
    lit_start = 0  # start of the pending literal run in the target
    diagonal: int | None = None  # source minus target offset of the previous copy

    def emit(s: int, t: int, length: int) -> None:
        """Flush the literal run up to `t`, then copy `length` source bytes from `s`."""
        nonlocal lit_start, diagonal
        if t > lit_start:
            out.extend((_b64(t - lit_start), b":", target[lit_start:t]))
        out.extend((_b64(length), b"@", _b64(s), b","))
        lit_start = t + length
        diagonal = s - t

    # A shared prefix shorter than a block would otherwise go out as a literal.
    prefix = _extend_forward(source, 0, target, 0, min(n, m))
    if json_safe:
        _, _, prefix = _utf8_trim(source, 0, target, 0, prefix)
    if prefix > _copy_cost(prefix, 0):
        emit(0, 0, prefix)

    end = m - _NHASH  # last target position with a whole window
    first = _index_source(source) if lit_start <= end and n >= _NHASH else {}

    def best_match(hit: int) -> tuple[int, int, int]:
        """The longest copy (length, source offset, target offset) through window `hit`.

        Candidates: the first source block equal to the window, and the source bytes on the
        previous copy's diagonal (the usual continuation after an edit, whichever block the
        window matched first).
        """
        block = target[hit : hit + _NHASH]
        candidates = [first[block]]
        if diagonal is not None:
            s = hit + diagonal
            if 0 <= s <= n - _NHASH and s not in candidates and source[s : s + _NHASH] == block:
                candidates.append(s)
        best = (0, 0, 0)
        for s in candidates:
            back = _extend_backward(source, s, target, hit, min(s, hit - lit_start))
            ahead = min(n - s, m - hit) - _NHASH
            length = (
                back + _NHASH + _extend_forward(source, s + _NHASH, target, hit + _NHASH, ahead)
            )
            if length > best[0]:
                best = (length, s - back, hit - back)
        return best

    pos = lit_start
    while pos <= end and first:
        hit = -1
        for p in range(pos, end + 1):  # a plain loop beats C iterator chains here
            if target[p : p + _NHASH] in first:
                hit = p
                break
        if hit < 0:
            break
        length, s, t = found = best_match(hit)
        if length < _LAZY:
            # A short match may be a coincidental repeat: a window a little further on can
            # lead to a copy reaching further (e.g. the true continuation after an edit).
            for p in range(hit + 1, min(hit + _NHASH, end) + 1):
                block = target[p : p + _NHASH]
                # A block on the diagonal of the match in hand would only find it again.
                if block in first and first[block] - p != s - t:
                    alt = best_match(p)
                    if alt[2] + alt[0] > t + length:
                        length, s, t = alt
            # Keep what the first match covers before the one that reaches further.
            head_len, head_s, head_t = found
            head_len = min(head_len, t - head_t)
            if json_safe:
                head_s, head_t, head_len = _utf8_trim(source, head_s, target, head_t, head_len)
            if head_len > _copy_cost(head_len, head_s):
                emit(head_s, head_t, head_len)
        if json_safe:
            s, t, length = _utf8_trim(source, s, target, t, length)
        if length > _copy_cost(length, s):
            emit(s, t, length)
            pos = lit_start
        else:
            pos = max(hit + 1, lit_start)

    # A shared suffix the block scan missed (it may straddle the last, unindexed, partial block).
    if lit_start < m:
        suffix = _extend_backward(source, n, target, m, min(n, m - lit_start))
        s, t = n - suffix, m - suffix
        if json_safe:
            s, t, suffix = _utf8_trim(source, s, target, t, suffix)
        if suffix > _copy_cost(suffix, s):
            emit(s, t, suffix)
    if lit_start < m:
        out.extend((_b64(m - lit_start), b":", target[lit_start:]))
    out.extend((_b64(checksum(target)), b";"))
    return b"".join(out)


# --- decoder --------------------------------------------------------------------------------


def _read_int(delta: bytes, pos: int) -> tuple[int, int]:
    """Parse a base-64 number at `pos`; return (value, position after it)."""
    value = 0
    start = pos
    size = len(delta)
    while pos < size:
        digit = _VALUE[delta[pos]]
        if digit < 0:
            break
        value = (value << 6) | digit
        pos += 1
    if pos == start:
        raise ValueError(f"bad delta: expected a number at offset {start}")
    if pos - start > _MAX_DIGITS:
        raise ValueError(f"bad delta: number too long at offset {start}")
    return value, pos


def apply_delta(source: bytes, delta: bytes) -> bytes:
    """Rebuild the target from `source` and a fossil `delta`; ValueError if it is malformed."""
    size = len(delta)
    target_len, pos = _read_int(delta, 0)
    if pos >= size or delta[pos] != _NL:
        raise ValueError("bad delta: target length is not followed by a newline")
    pos += 1
    pieces: list[bytes] = []
    total = 0
    while pos < size:
        value, pos = _read_int(delta, pos)
        if pos >= size:
            raise ValueError("bad delta: unterminated command")
        op = delta[pos]
        pos += 1
        if op == _AT:
            offset, pos = _read_int(delta, pos)
            if pos >= size or delta[pos] != _COMMA:
                raise ValueError("bad delta: copy command is not terminated by ','")
            pos += 1
            if offset + value > len(source):
                raise ValueError("bad delta: copy extends past the end of the source")
            total += value
            if total > target_len:
                raise ValueError("bad delta: output exceeds the declared target length")
            pieces.append(source[offset : offset + value])
        elif op == _COLON:
            if pos + value > size:
                raise ValueError("bad delta: literal extends past the end of the delta")
            total += value
            if total > target_len:
                raise ValueError("bad delta: output exceeds the declared target length")
            pieces.append(delta[pos : pos + value])
            pos += value
        elif op == _SEMI:
            if pos != size:
                raise ValueError("bad delta: trailing bytes after the checksum")
            if total != target_len:
                raise ValueError("bad delta: output is shorter than the declared target length")
            target = b"".join(pieces)
            if checksum(target) != value:
                raise ValueError("bad delta: checksum mismatch")
            return target
        else:
            raise ValueError(f"bad delta: unknown command {chr(op)!r} at offset {pos - 1}")
    raise ValueError("bad delta: missing checksum")
