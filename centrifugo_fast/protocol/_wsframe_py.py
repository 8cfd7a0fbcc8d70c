"""RFC 6455 server-side frame parser and encoder: the pure-Python twin of `_wsframe_c`.

Both twins implement the same explicit state machine (see `_wsframe_c.pyx`, which carries
the same comments); only the inner loops differ. Nothing but `frames.py` imports this module.

Reading works like `asyncio.BufferedProtocol`: `get_buffer()` hands out a module-level scratch
buffer while no partial frame is pending (an idle parser owns no read buffer), and
`buffer_updated()` parses what landed there. A frame that is still incomplete at the end of a
read is copied into a per-parser buffer sized for that frame, and later reads land directly in
it; the buffer is dropped as soon as it has been consumed.

With ``inflate=True`` (permessage-deflate negotiated, RFC 7692) RSV1 may be set on the first
frame of a data message: that message is collected compressed, inflated by `deflate.inflate`
once complete (a fresh decompressor each time: client_no_context_takeover is always agreed),
then UTF-8 checked whole if text. Uncompressed messages keep the incremental path.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from typing import Any

from .deflate import InflatedTooBig, InflateError, inflate

__all__ = ["FrameParser", "encode_close", "encode_frame"]

# Opcodes (frames.Opcode mirrors these; importing frames here would be circular).
_CONT = 0x0
_TEXT = 0x1
_BINARY = 0x2
_CLOSE = 0x8
_PING = 0x9
_PONG = 0xA

# Close codes the parser reports.
_NO_STATUS = 1005
_PROTOCOL_ERROR = 1002
_INVALID_DATA = 1007
_MESSAGE_TOO_BIG = 1009

# RSV bits a peer may set: only RSV1 ("compressed", RFC 7692 §6), only when permessage-deflate
# was negotiated (inflate=True), and only on the first frame of a data message.
_RSV_ALLOWED = 0x40

_MAX_CONTROL_PAYLOAD = 125
_MAX_CLOSE_REASON = 123

#: Size of the shared scratch buffer that reads land in while no partial frame is pending.
_SCRATCH_SIZE = 65536
#: Room given to a per-parser buffer holding an incomplete frame header (a header is <= 14 B).
_HEADER_ROOM = 256
_MAX_HEADER = 14

# The scratch buffer is shared by every parser in the process. This is safe because the event
# loop calls get_buffer() and buffer_updated() back to back, and a parser copies any incomplete
# tail out of it before buffer_updated() returns.
_scratch = bytearray(_SCRATCH_SIZE)
_scratch_view = memoryview(_scratch)

# Parser states.
_HEADER = 0  # waiting for (the rest of) a frame header
_PAYLOAD = 1  # header consumed, waiting for the rest of the payload

_Utf8Decoder = codecs.getincrementaldecoder("utf-8")
_utf8_decode = codecs.utf_8_decode


def _callback(sink: object, name: str) -> Any:
    return getattr(sink, name)


def _valid_close_code(code: int) -> bool:
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _unmask(buf: bytearray, start: int, end: int, mask: bytes, offset: int) -> None:
    """XOR buf[start:end] in place with the 4-byte mask, the first byte using mask[offset % 4]."""
    n = end - start
    if n <= 0:
        return
    offset &= 3
    if offset:
        mask = mask[offset:] + mask[:offset]
    key = mask * ((n >> 2) + 1)
    data = int.from_bytes(buf[start:end], "little") ^ int.from_bytes(key[:n], "little")
    buf[start:end] = data.to_bytes(n, "little")


class FrameParser:
    """Parse client frames and report them to a sink.

    The sink's callbacks are looked up once, here: ``on_message(opcode, payload)``,
    ``on_ping(payload)``, ``on_pong(payload)``, ``on_close(code, reason)`` and
    ``on_protocol_error(close_code, reason)``. Bad input never raises: it becomes one
    ``on_protocol_error`` call, after which the parser is `closed` and ignores input. If a
    callback raises, the parser releases itself and the exception propagates.
    With ``inflate=True`` (permessage-deflate negotiated) a message whose first frame has RSV1
    is inflated before delivery: too big once inflated is 1009, a bad deflate stream 1007.

    .. danger::
       The ``payload`` memoryview given to ``on_message`` may point into the parser's receive
       buffer, which is reused for the next read. It is valid ONLY during the call: copy it
       (``bytes(payload)``) or decode it before returning; never keep a reference to it.
    """

    __slots__ = (
        "_closed",
        "_decoder",
        "_fin",
        "_flen",
        "_fdone",
        "_fmask",
        "_fopcode",
        "_in_scratch",
        "_inflate",
        "_max_message_size",
        "_mbuf",
        "_mdeflate",
        "_mopcode",
        "_on_close",
        "_on_message",
        "_on_ping",
        "_on_pong",
        "_on_protocol_error",
        "_pbuf",
        "_pend",
        "_pstart",
        "_require_mask",
        "_state",
    )

    def __init__(
        self,
        sink: object,
        max_message_size: int,
        *,
        require_mask: bool = True,
        inflate: bool = False,
    ) -> None:
        if max_message_size < 1:
            raise ValueError("max_message_size must be positive")
        self._on_message: Callable[[int, memoryview], object] = _callback(sink, "on_message")
        self._on_ping: Callable[[bytes], object] = _callback(sink, "on_ping")
        self._on_pong: Callable[[bytes], object] = _callback(sink, "on_pong")
        self._on_close: Callable[[int, str], object] = _callback(sink, "on_close")
        self._on_protocol_error: Callable[[int, str], object] = _callback(sink, "on_protocol_error")
        self._max_message_size = max_message_size
        self._require_mask = require_mask
        self._inflate = inflate
        self._closed = False
        self._in_scratch = False
        # Per-parser receive buffer: pending bytes are _pbuf[_pstart:_pend].
        self._pbuf: bytearray | None = None
        self._pstart = 0
        self._pend = 0
        # The frame whose header has been consumed (state _PAYLOAD).
        self._state = _HEADER
        self._fopcode = 0
        self._fin = False
        self._fmask: bytes | None = None
        self._flen = 0
        self._fdone = 0  # payload bytes already unmasked (and UTF-8 checked for text)
        # A fragmented data message in progress (_mopcode != 0).
        self._mopcode = 0
        self._mbuf: bytearray | None = None
        # The data message in progress (or the single frame being read) is compressed: it is
        # collected as is and inflated, then checked, when complete.
        self._mdeflate = False
        # UTF-8 state of a text message checked piecewise; None when nothing is pending.
        self._decoder: codecs.IncrementalDecoder | None = None

    @property
    def buffered_size(self) -> int:
        """Bytes held for an incomplete frame or message (0 when idle)."""
        size = self._pend - self._pstart
        if self._mbuf is not None:
            size += len(self._mbuf)
        return size

    @property
    def closed(self) -> bool:
        """True after a close frame, a protocol error or release(): input is ignored."""
        return self._closed

    def release(self) -> None:
        """Drop every buffer (the connection is gone); later calls are no-ops."""
        self._closed = True
        self._pbuf = None
        self._pstart = self._pend = 0
        self._mbuf = None
        self._mopcode = 0
        self._decoder = None
        self._state = _HEADER

    def get_buffer(self, sizehint: int) -> memoryview:
        """Return a non-empty writable buffer for the next read (BufferedProtocol)."""
        pbuf = self._pbuf
        if pbuf is None:
            self._in_scratch = True
            return _scratch_view
        self._in_scratch = False
        return memoryview(pbuf)[self._pend :]

    def buffer_updated(self, nbytes: int) -> None:
        """Parse `nbytes` just written into the buffer from get_buffer() (BufferedProtocol)."""
        if self._closed or nbytes <= 0:
            return
        try:
            self._updated(nbytes)
        except BaseException:
            self.release()
            raise

    def feed_data(self, data: bytes | bytearray | memoryview) -> None:
        """Parse `data` as if it had been read through get_buffer()/buffer_updated()."""
        view = memoryview(data).cast("B")
        pos = 0
        total = len(view)
        while pos < total and not self._closed:
            target = self.get_buffer(total - pos)
            n = min(len(target), total - pos)
            target[:n] = view[pos : pos + n]
            self.buffer_updated(n)
            pos += n

    # -- internals ------------------------------------------------------------------------

    def _updated(self, nbytes: int) -> None:
        if self._in_scratch:
            self._in_scratch = False
            pos = self._parse(_scratch, 0, nbytes)
            if pos < nbytes and not self._closed:
                self._keep_tail(_scratch, pos, nbytes)
            return
        pbuf = self._pbuf
        if pbuf is None:
            raise RuntimeError("buffer_updated() without a preceding get_buffer()")
        end = self._pend + nbytes
        self._pend = end
        pos = self._parse(pbuf, self._pstart, end)
        if self._closed:
            return
        if pos == end:
            self._pbuf = None
            self._pstart = self._pend = 0
            return
        self._pstart = pos
        if self._state == _PAYLOAD:
            if pos + self._flen > len(pbuf):
                self._keep_tail(pbuf, pos, end)
        elif pos + _MAX_HEADER > len(pbuf):
            self._keep_tail(pbuf, pos, end)

    def _keep_tail(self, buf: bytearray, pos: int, end: int) -> None:
        """Copy the incomplete frame buf[pos:end] into a fresh per-parser buffer."""
        pending = end - pos
        size = self._flen if self._state == _PAYLOAD else _HEADER_ROOM
        pbuf = bytearray(size)
        pbuf[:pending] = buf[pos:end]
        self._pbuf = pbuf
        self._pstart = 0
        self._pend = pending

    def _fail(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self.release()
        self._on_protocol_error(code, reason)

    def _parse(self, buf: bytearray, pos: int, end: int) -> int:
        """Consume complete frames from buf[pos:end]; return the first unconsumed position.

        When the last frame is incomplete, its header (once complete) is consumed, so the
        returned position is then the start of its payload; the payload received so far is
        unmasked and, for text, UTF-8 checked.
        """
        while not self._closed:
            if self._state == _HEADER:
                avail = end - pos
                if avail < 2:
                    return pos
                b0 = buf[pos]
                b1 = buf[pos + 1]
                opcode = b0 & 0x0F
                fin = (b0 & 0x80) != 0
                rsv = b0 & 0x70
                if rsv and (
                    rsv & ~_RSV_ALLOWED
                    or not self._inflate
                    or not (opcode == _TEXT or opcode == _BINARY)
                ):
                    self._fail(_PROTOCOL_ERROR, "reserved bits set")
                    return pos
                if opcode >= _CLOSE:
                    if opcode > _PONG:
                        self._fail(_PROTOCOL_ERROR, "reserved opcode")
                        return pos
                    if not fin:
                        self._fail(_PROTOCOL_ERROR, "fragmented control frame")
                        return pos
                    if (b1 & 0x7F) > _MAX_CONTROL_PAYLOAD:
                        self._fail(_PROTOCOL_ERROR, "control frame too long")
                        return pos
                elif opcode == _CONT:
                    if self._mopcode == 0:
                        self._fail(_PROTOCOL_ERROR, "unexpected continuation frame")
                        return pos
                elif opcode <= _BINARY:
                    if self._mopcode != 0:
                        self._fail(_PROTOCOL_ERROR, "expected a continuation frame")
                        return pos
                    self._mdeflate = rsv != 0
                else:
                    self._fail(_PROTOCOL_ERROR, "reserved opcode")
                    return pos
                masked = (b1 & 0x80) != 0
                if not masked and self._require_mask:
                    self._fail(_PROTOCOL_ERROR, "unmasked client frame")
                    return pos
                length = b1 & 0x7F
                hlen = 2
                if length == 126:
                    if avail < 4:
                        return pos
                    length = (buf[pos + 2] << 8) | buf[pos + 3]
                    hlen = 4
                elif length == 127:
                    if avail < 10:
                        return pos
                    length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                    if length >> 63:
                        self._fail(_PROTOCOL_ERROR, "invalid frame length")
                        return pos
                    hlen = 10
                if opcode < _CLOSE:
                    total = length
                    if self._mbuf is not None:
                        total += len(self._mbuf)
                    if total > self._max_message_size:
                        self._fail(_MESSAGE_TOO_BIG, "message too big")
                        return pos
                if masked:
                    if avail < hlen + 4:
                        return pos
                    self._fmask = bytes(buf[pos + hlen : pos + hlen + 4])
                    hlen += 4
                else:
                    self._fmask = None
                pos += hlen
                self._state = _PAYLOAD
                self._fopcode = opcode
                self._fin = fin
                self._flen = length
                self._fdone = 0

            # _PAYLOAD: buf[pos:] holds the payload received so far.
            flen = self._flen
            have = end - pos
            if have < flen:
                if have > self._fdone:
                    self._advance(buf, pos, have)
                return pos
            self._state = _HEADER
            if flen > self._fdone and not self._advance(buf, pos, flen):
                return pos
            self._frame_done(buf, pos, flen)
            pos += flen
        return pos

    def _advance(self, buf: bytearray, pos: int, upto: int) -> bool:
        """Unmask payload bytes [_fdone, upto) and check them if text; False on bad UTF-8."""
        done = self._fdone
        mask = self._fmask
        if mask is not None:
            _unmask(buf, pos + done, pos + upto, mask, done)
        self._fdone = upto
        if self._mdeflate:
            return True  # checked once inflated
        opcode = self._fopcode
        if opcode == _TEXT or (opcode == _CONT and self._mopcode == _TEXT):
            decoder = self._decoder
            if decoder is None:
                if opcode == _TEXT and self._fin and done == 0 and upto == self._flen:
                    # Common case: a whole single-frame text message at once.
                    try:
                        _utf8_decode(buf[pos : pos + upto], "strict", True)
                    except UnicodeDecodeError:
                        self._fail(_INVALID_DATA, "invalid UTF-8 in text message")
                        return False
                    return True
                decoder = self._decoder = _Utf8Decoder()
            try:
                decoder.decode(buf[pos + done : pos + upto], False)
            except UnicodeDecodeError:
                self._fail(_INVALID_DATA, "invalid UTF-8 in text message")
                return False
            pending = decoder.getstate()[0]
            if len(pending) > 1 and pending[0] == 0xED and pending[1] > 0x9F:
                # CPython waits for the third byte before rejecting a surrogate; fail now.
                self._fail(_INVALID_DATA, "invalid UTF-8 in text message")
                return False
        return True

    def _frame_done(self, buf: bytearray, pos: int, flen: int) -> None:
        """Act on the complete, unmasked frame whose payload is buf[pos:pos + flen]."""
        opcode = self._fopcode
        if opcode >= _CLOSE:
            if opcode == _PING:
                self._on_ping(bytes(buf[pos : pos + flen]))
            elif opcode == _PONG:
                self._on_pong(bytes(buf[pos : pos + flen]))
            else:
                self._close_frame(bytes(buf[pos : pos + flen]))
            return
        if self._fin and self._decoder is not None:
            decoder = self._decoder
            self._decoder = None
            try:
                decoder.decode(b"", True)
            except UnicodeDecodeError:
                self._fail(_INVALID_DATA, "truncated UTF-8 at the end of a text message")
                return
        if opcode != _CONT:
            if self._fin:
                view = _scratch_view if buf is _scratch else memoryview(buf)
                if self._mdeflate:
                    self._inflated(opcode, view[pos : pos + flen])
                    return
                self._on_message(opcode, view[pos : pos + flen])
                return
            self._mopcode = opcode
            self._mbuf = bytearray(buf[pos : pos + flen])
            return
        mbuf = self._mbuf
        assert mbuf is not None
        mbuf += buf[pos : pos + flen]
        if self._fin:
            opcode = self._mopcode
            self._mopcode = 0
            self._mbuf = None
            if self._mdeflate:
                self._inflated(opcode, mbuf)
                return
            self._on_message(opcode, memoryview(mbuf))

    def _inflated(self, opcode: int, data: bytearray | memoryview) -> None:
        """Inflate a complete compressed message, check it, and deliver it."""
        try:
            payload = inflate(data, self._max_message_size)
        except InflatedTooBig:
            self._fail(_MESSAGE_TOO_BIG, "message too big once inflated")
            return
        except InflateError:
            self._fail(_INVALID_DATA, "invalid compressed data")
            return
        if opcode == _TEXT:
            try:
                _utf8_decode(payload, "strict", True)
            except UnicodeDecodeError:
                self._fail(_INVALID_DATA, "invalid UTF-8 in text message")
                return
        self._on_message(opcode, memoryview(payload))

    def _close_frame(self, payload: bytes) -> None:
        n = len(payload)
        if n == 0:
            code = _NO_STATUS
            reason = ""
        elif n == 1:
            self._fail(_PROTOCOL_ERROR, "close frame payload of one byte")
            return
        else:
            code = (payload[0] << 8) | payload[1]
            if not _valid_close_code(code):
                self._fail(_PROTOCOL_ERROR, f"invalid close code {code}")
                return
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                self._fail(_INVALID_DATA, "invalid UTF-8 in close reason")
                return
        self.release()
        self._on_close(code, reason)


def encode_frame(
    opcode: int, payload: bytes | bytearray | memoryview, fin: bool = True, rsv1: bool = False
) -> bytes:
    """Encode one server frame: unmasked, with the minimal length encoding."""
    if not 0 <= opcode <= 0x0F:
        raise ValueError(f"invalid opcode {opcode}")
    n = len(payload) if not isinstance(payload, memoryview) else payload.nbytes
    if opcode >= _CLOSE and (n > _MAX_CONTROL_PAYLOAD or not fin):
        raise ValueError("control frames must be final and carry at most 125 bytes")
    b0 = opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    if n < 126:
        header = bytes((b0, n))
    elif n < 65536:
        header = bytes((b0, 126, n >> 8, n & 0xFF))
    else:
        header = bytes((b0, 127)) + n.to_bytes(8, "big")
    return header + payload


def encode_close(code: int, reason: str = "") -> bytes:
    """Encode a complete close frame; the reason is cut to 123 UTF-8 bytes on a boundary."""
    if code == 0 or code == _NO_STATUS:
        return b"\x88\x00"
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"invalid close code {code}")
    data = reason.encode("utf-8", "replace")
    if len(data) > _MAX_CLOSE_REASON:
        cut = _MAX_CLOSE_REASON
        while cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        data = data[:cut]
    return bytes((0x88, 2 + len(data), code >> 8, code & 0xFF)) + data
