"""RFC 6455 server-side frame parser and encoder: the compiled twin of `_wsframe_py`.

Both twins implement the same explicit state machine; only the inner loops differ (here:
unmasking 8 bytes at a time with a uint64 XOR and a UTF-8 validator with an ASCII fast path).
Nothing but `frames.py` imports this module.

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

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport (
    PyByteArray_AS_STRING,
    PyByteArray_FromStringAndSize,
    PyByteArray_GET_SIZE,
    PyByteArray_Resize,
)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize
from cpython.bytes cimport PyBytes_GET_SIZE
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

from centrifugo_fast.protocol.deflate import InflatedTooBig, InflateError, inflate

__all__ = ["FrameParser", "encode_close", "encode_frame"]

# Opcodes (frames.Opcode mirrors these; importing frames here would be circular).
cdef enum:
    OP_CONT = 0x0
    OP_TEXT = 0x1
    OP_BINARY = 0x2
    OP_CLOSE = 0x8
    OP_PING = 0x9
    OP_PONG = 0xA

# Close codes the parser reports.
cdef enum:
    NO_STATUS = 1005
    PROTOCOL_ERROR = 1002
    INVALID_DATA = 1007
    MESSAGE_TOO_BIG = 1009

# RSV bits a peer may set: only RSV1 ("compressed", RFC 7692 §6), only when permessage-deflate
# was negotiated (inflate=True), and only on the first frame of a data message.
cdef enum:
    RSV_ALLOWED = 0x40

cdef enum:
    MAX_CONTROL_PAYLOAD = 125
    MAX_CLOSE_REASON = 123
    SCRATCH_SIZE = 65536     # shared buffer that reads land in while nothing is pending
    HEADER_ROOM = 256        # per-parser buffer for an incomplete header (a header is <= 14 B)
    MAX_HEADER = 14

# Parser states.
cdef enum:
    ST_HEADER = 0            # waiting for (the rest of) a frame header
    ST_PAYLOAD = 1           # header consumed, waiting for the rest of the payload

# The scratch buffer is shared by every parser in the process. This is safe because the event
# loop calls get_buffer() and buffer_updated() back to back, and a parser copies any incomplete
# tail out of it before buffer_updated() returns. It is never resized or freed.
cdef bytearray _scratch = PyByteArray_FromStringAndSize(NULL, SCRATCH_SIZE)
cdef object _scratch_view = memoryview(_scratch)


# -- unmasking and UTF-8 ------------------------------------------------------------------

cdef inline void _unmask(unsigned char* p, Py_ssize_t n, const unsigned char* mask,
                         Py_ssize_t offset) noexcept nogil:
    """XOR p[0:n] with the mask, p[0] taking mask[offset % 4]."""
    cdef unsigned char key[8]
    cdef uint64_t k, w0, w1
    cdef Py_ssize_t i = 0
    cdef int j
    for j in range(8):
        key[j] = mask[(offset + j) & 3]
    memcpy(&k, key, 8)
    while i + 16 <= n:
        memcpy(&w0, p + i, 8)
        memcpy(&w1, p + i + 8, 8)
        w0 ^= k
        w1 ^= k
        memcpy(p + i, &w0, 8)
        memcpy(p + i + 8, &w1, 8)
        i += 16
    if i + 8 <= n:
        memcpy(&w0, p + i, 8)
        w0 ^= k
        memcpy(p + i, &w0, 8)
        i += 8
    j = 0  # i is a multiple of 8, so the key phase starts over
    while i < n:
        p[i] ^= key[j]
        i += 1
        j += 1


# UTF-8 validator states: 0 accepts, 1..3 expect that many continuation bytes 80..BF, and
# 4..7 expect the restricted second byte after E0 (A0..BF), ED (80..9F, no surrogates),
# F0 (90..BF, no overlong) and F4 (80..8F, <= U+10FFFF). -1 rejects.
cdef enum:
    U8_ACCEPT = 0
    U8_REJECT = -1

cdef int _utf8_check(const unsigned char* p, Py_ssize_t n, int state) noexcept nogil:
    """Advance the validator over p[0:n]; return the new state or U8_REJECT."""
    cdef Py_ssize_t i = 0
    cdef unsigned char c
    cdef uint64_t w
    while i < n:
        if state == U8_ACCEPT:
            while i + 8 <= n:
                memcpy(&w, p + i, 8)
                if w & 0x8080808080808080ULL:
                    break
                i += 8
            if i >= n:
                break
            c = p[i]
            i += 1
            if c < 0x80:
                continue
            if c < 0xC2:
                return U8_REJECT
            elif c < 0xE0:
                state = 1
            elif c == 0xE0:
                state = 4
            elif c == 0xED:
                state = 5
            elif c < 0xF0:
                state = 2
            elif c == 0xF0:
                state = 6
            elif c < 0xF4:
                state = 3
            elif c == 0xF4:
                state = 7
            else:
                return U8_REJECT
        else:
            c = p[i]
            i += 1
            if state <= 3:
                if (c & 0xC0) != 0x80:
                    return U8_REJECT
                state -= 1
            elif state == 4:
                if c < 0xA0 or c > 0xBF:
                    return U8_REJECT
                state = 1
            elif state == 5:
                if c < 0x80 or c > 0x9F:
                    return U8_REJECT
                state = 1
            elif state == 6:
                if c < 0x90 or c > 0xBF:
                    return U8_REJECT
                state = 2
            else:
                if c < 0x80 or c > 0x8F:
                    return U8_REJECT
                state = 2
    return state


cdef inline bint _valid_close_code(int code) noexcept nogil:
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


# -- the parser ---------------------------------------------------------------------------

cdef class FrameParser:
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

    def __init__(self, object sink, Py_ssize_t max_message_size, *, bint require_mask=True,
                 bint inflate=False):
        if max_message_size < 1:
            raise ValueError("max_message_size must be positive")
        self._on_message = getattr(sink, "on_message")
        self._on_ping = getattr(sink, "on_ping")
        self._on_pong = getattr(sink, "on_pong")
        self._on_close = getattr(sink, "on_close")
        self._on_protocol_error = getattr(sink, "on_protocol_error")
        self._max_message_size = max_message_size
        self._require_mask = require_mask
        self._inflate = inflate
        self._closed = False
        self._in_scratch = False
        self._pbuf = None
        self._pstart = 0
        self._pend = 0
        self._state = ST_HEADER
        self._fopcode = 0
        self._fin = False
        self._fmasked = False
        self._flen = 0
        self._fdone = 0
        self._mopcode = 0
        self._mbuf = None
        self._mdeflate = False
        self._utf8 = U8_ACCEPT

    @property
    def buffered_size(self):
        """Bytes held for an incomplete frame or message (0 when idle)."""
        cdef Py_ssize_t size = self._pend - self._pstart
        if self._mbuf is not None:
            size += PyByteArray_GET_SIZE(self._mbuf)
        return size

    @property
    def closed(self):
        """True after a close frame, a protocol error or release(): input is ignored."""
        return self._closed

    def release(self):
        """Drop every buffer (the connection is gone); later calls are no-ops."""
        self._drop()

    def get_buffer(self, Py_ssize_t sizehint):
        """Return a non-empty writable buffer for the next read (BufferedProtocol)."""
        if self._pbuf is None:
            self._in_scratch = True
            return _scratch_view
        self._in_scratch = False
        return memoryview(self._pbuf)[self._pend:]

    def buffer_updated(self, Py_ssize_t nbytes):
        """Parse `nbytes` just written into the buffer from get_buffer() (BufferedProtocol)."""
        if self._closed or nbytes <= 0:
            return
        try:
            self._updated(nbytes)
        except BaseException:
            self._drop()
            raise

    def feed_data(self, object data):
        """Parse `data` as if it had been read through get_buffer()/buffer_updated()."""
        cdef Py_buffer src
        cdef Py_ssize_t pos = 0, n, room
        cdef char* dst
        PyObject_GetBuffer(data, &src, PyBUF_SIMPLE)
        try:
            while pos < src.len and not self._closed:
                if self._pbuf is None:
                    self._in_scratch = True
                    dst = PyByteArray_AS_STRING(_scratch)
                    room = SCRATCH_SIZE
                else:
                    self._in_scratch = False
                    dst = PyByteArray_AS_STRING(self._pbuf) + self._pend
                    room = PyByteArray_GET_SIZE(self._pbuf) - self._pend
                n = src.len - pos
                if n > room:
                    n = room
                memcpy(dst, <char*>src.buf + pos, n)
                try:
                    self._updated(n)
                except BaseException:
                    self._drop()
                    raise
                pos += n
        finally:
            PyBuffer_Release(&src)

    # -- internals ------------------------------------------------------------------------

    cdef void _drop(self) noexcept:
        self._closed = True
        self._pbuf = None
        self._pstart = 0
        self._pend = 0
        self._mbuf = None
        self._mopcode = 0
        self._utf8 = U8_ACCEPT
        self._state = ST_HEADER

    cdef int _updated(self, Py_ssize_t nbytes) except -1:
        cdef Py_ssize_t pos, end
        cdef bytearray pbuf
        if self._closed or nbytes <= 0:
            return 0
        if self._in_scratch:
            self._in_scratch = False
            pos = self._parse(_scratch, 0, nbytes)
            if pos < nbytes and not self._closed:
                self._keep_tail(_scratch, pos, nbytes)
            return 0
        pbuf = self._pbuf
        if pbuf is None:
            raise RuntimeError("buffer_updated() without a preceding get_buffer()")
        end = self._pend + nbytes
        self._pend = end
        pos = self._parse(pbuf, self._pstart, end)
        if self._closed:
            return 0
        if pos == end:
            self._pbuf = None
            self._pstart = 0
            self._pend = 0
            return 0
        self._pstart = pos
        if self._state == ST_PAYLOAD:
            if pos + self._flen > PyByteArray_GET_SIZE(pbuf):
                self._keep_tail(pbuf, pos, end)
        elif pos + MAX_HEADER > PyByteArray_GET_SIZE(pbuf):
            self._keep_tail(pbuf, pos, end)
        return 0

    cdef int _keep_tail(self, bytearray buf, Py_ssize_t pos, Py_ssize_t end) except -1:
        """Copy the incomplete frame buf[pos:end] into a fresh per-parser buffer."""
        cdef Py_ssize_t pending = end - pos
        cdef Py_ssize_t size = self._flen if self._state == ST_PAYLOAD else HEADER_ROOM
        cdef bytearray pbuf = PyByteArray_FromStringAndSize(NULL, size)
        memcpy(PyByteArray_AS_STRING(pbuf), PyByteArray_AS_STRING(buf) + pos, pending)
        self._pbuf = pbuf
        self._pstart = 0
        self._pend = pending
        return 0

    cdef int _fail(self, int code, str reason) except -1:
        if self._closed:
            return 0
        self._drop()
        self._on_protocol_error(code, reason)
        return 0

    cdef Py_ssize_t _parse(self, bytearray buf, Py_ssize_t pos, Py_ssize_t end) except -1:
        """Consume complete frames from buf[pos:end]; return the first unconsumed position.

        When the last frame is incomplete, its header (once complete) is consumed, so the
        returned position is then the start of its payload; the payload received so far is
        unmasked and, for text, UTF-8 checked. `buf` (a local reference) stays alive even if a
        callback releases the parser.
        """
        cdef unsigned char* p = <unsigned char*>PyByteArray_AS_STRING(buf)
        cdef Py_ssize_t avail, hlen, flen, have, total
        cdef unsigned char b0, b1, rsv
        cdef int opcode
        cdef bint fin, masked
        cdef uint64_t length
        cdef int k
        while not self._closed:
            if self._state == ST_HEADER:
                avail = end - pos
                if avail < 2:
                    return pos
                b0 = p[pos]
                b1 = p[pos + 1]
                opcode = b0 & 0x0F
                fin = (b0 & 0x80) != 0
                rsv = b0 & 0x70
                if rsv and (rsv & ~RSV_ALLOWED or not self._inflate
                            or not (opcode == OP_TEXT or opcode == OP_BINARY)):
                    self._fail(PROTOCOL_ERROR, "reserved bits set")
                    return pos
                if opcode >= OP_CLOSE:
                    if opcode > OP_PONG:
                        self._fail(PROTOCOL_ERROR, "reserved opcode")
                        return pos
                    if not fin:
                        self._fail(PROTOCOL_ERROR, "fragmented control frame")
                        return pos
                    if (b1 & 0x7F) > MAX_CONTROL_PAYLOAD:
                        self._fail(PROTOCOL_ERROR, "control frame too long")
                        return pos
                elif opcode == OP_CONT:
                    if self._mopcode == 0:
                        self._fail(PROTOCOL_ERROR, "unexpected continuation frame")
                        return pos
                elif opcode <= OP_BINARY:
                    if self._mopcode != 0:
                        self._fail(PROTOCOL_ERROR, "expected a continuation frame")
                        return pos
                    self._mdeflate = rsv != 0
                else:
                    self._fail(PROTOCOL_ERROR, "reserved opcode")
                    return pos
                masked = (b1 & 0x80) != 0
                if not masked and self._require_mask:
                    self._fail(PROTOCOL_ERROR, "unmasked client frame")
                    return pos
                length = b1 & 0x7F
                hlen = 2
                if length == 126:
                    if avail < 4:
                        return pos
                    length = (<uint64_t>p[pos + 2] << 8) | p[pos + 3]
                    hlen = 4
                elif length == 127:
                    if avail < 10:
                        return pos
                    length = 0
                    for k in range(2, 10):
                        length = (length << 8) | p[pos + k]
                    if length >> 63:
                        self._fail(PROTOCOL_ERROR, "invalid frame length")
                        return pos
                    hlen = 10
                if opcode < OP_CLOSE:
                    if length > <uint64_t>self._max_message_size:
                        self._fail(MESSAGE_TOO_BIG, "message too big")
                        return pos
                    total = <Py_ssize_t>length
                    if self._mbuf is not None:
                        total += PyByteArray_GET_SIZE(self._mbuf)
                    if total > self._max_message_size:
                        self._fail(MESSAGE_TOO_BIG, "message too big")
                        return pos
                if masked:
                    if avail < hlen + 4:
                        return pos
                    memcpy(self._fmask, p + pos + hlen, 4)
                    hlen += 4
                pos += hlen
                self._state = ST_PAYLOAD
                self._fopcode = opcode
                self._fin = fin
                self._fmasked = masked
                self._flen = <Py_ssize_t>length
                self._fdone = 0

            # ST_PAYLOAD: p[pos:] holds the payload received so far.
            flen = self._flen
            have = end - pos
            if have < flen:
                if have > self._fdone:
                    self._advance(p + pos, have)
                return pos
            self._state = ST_HEADER
            if flen > self._fdone and not self._advance(p + pos, flen):
                return pos
            self._frame_done(buf, pos, flen)
            pos += flen
        return pos

    cdef int _advance(self, unsigned char* payload, Py_ssize_t upto) except -1:
        """Unmask payload bytes [_fdone, upto) and check them if text; 0 on bad UTF-8."""
        cdef Py_ssize_t done = self._fdone
        if self._fmasked:
            _unmask(payload + done, upto - done, self._fmask, done)
        self._fdone = upto
        if self._mdeflate:
            return 1  # checked once inflated
        if self._fopcode == OP_TEXT or (self._fopcode == OP_CONT and self._mopcode == OP_TEXT):
            self._utf8 = _utf8_check(payload + done, upto - done, self._utf8)
            if self._utf8 == U8_REJECT:
                self._fail(INVALID_DATA, "invalid UTF-8 in text message")
                return 0
        return 1

    cdef int _frame_done(self, bytearray buf, Py_ssize_t pos, Py_ssize_t flen) except -1:
        """Act on the complete, unmasked frame whose payload is buf[pos:pos + flen]."""
        cdef int opcode = self._fopcode
        cdef unsigned char* p = <unsigned char*>PyByteArray_AS_STRING(buf) + pos
        cdef bytearray mbuf
        cdef Py_ssize_t size
        if opcode >= OP_CLOSE:
            if opcode == OP_PING:
                self._on_ping(PyBytes_FromStringAndSize(<char*>p, flen))
            elif opcode == OP_PONG:
                self._on_pong(PyBytes_FromStringAndSize(<char*>p, flen))
            else:
                self._close_frame(p, flen)
            return 0
        if self._fin and self._utf8 != U8_ACCEPT:
            self._fail(INVALID_DATA, "truncated UTF-8 at the end of a text message")
            return 0
        if opcode != OP_CONT:
            if self._fin:
                if buf is _scratch:
                    # The scratch buffer lives as long as the module: a bare view is safe.
                    view = PyMemoryView_FromMemory(<char*>p, flen, PyBUF_WRITE)
                else:
                    view = memoryview(buf)[pos:pos + flen]  # keeps the per-parser buffer alive
                if self._mdeflate:
                    return self._inflated(opcode, view)
                self._on_message(opcode, view)
                return 0
            self._mopcode = opcode
            self._mbuf = PyByteArray_FromStringAndSize(<char*>p, flen)
            return 0
        mbuf = self._mbuf
        size = PyByteArray_GET_SIZE(mbuf)
        if flen:
            PyByteArray_Resize(mbuf, size + flen)
            memcpy(PyByteArray_AS_STRING(mbuf) + size, p, flen)
        if self._fin:
            opcode = self._mopcode
            self._mopcode = 0
            self._mbuf = None
            if self._mdeflate:
                return self._inflated(opcode, mbuf)
            self._on_message(opcode, memoryview(mbuf))
        return 0

    cdef int _inflated(self, int opcode, object data) except -1:
        """Inflate a complete compressed message, check it, and deliver it."""
        cdef bytes payload
        try:
            payload = inflate(data, self._max_message_size)
        except InflatedTooBig:
            self._fail(MESSAGE_TOO_BIG, "message too big once inflated")
            return 0
        except InflateError:
            self._fail(INVALID_DATA, "invalid compressed data")
            return 0
        if opcode == OP_TEXT and _utf8_check(
            <const unsigned char*>PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload), U8_ACCEPT
        ) != U8_ACCEPT:
            self._fail(INVALID_DATA, "invalid UTF-8 in text message")
            return 0
        self._on_message(opcode, memoryview(payload))
        return 0

    cdef int _close_frame(self, const unsigned char* payload, Py_ssize_t n) except -1:
        cdef int code
        cdef str reason
        if n == 0:
            code = NO_STATUS
            reason = ""
        elif n == 1:
            self._fail(PROTOCOL_ERROR, "close frame payload of one byte")
            return 0
        else:
            code = (payload[0] << 8) | payload[1]
            if not _valid_close_code(code):
                self._fail(PROTOCOL_ERROR, f"invalid close code {code}")
                return 0
            if _utf8_check(payload + 2, n - 2, U8_ACCEPT) != U8_ACCEPT:
                self._fail(INVALID_DATA, "invalid UTF-8 in close reason")
                return 0
            reason = PyUnicode_DecodeUTF8(<const char*>payload + 2, n - 2, NULL)
        self._drop()
        self._on_close(code, reason)
        return 0


# -- the encoder --------------------------------------------------------------------------

def encode_frame(int opcode, object payload, bint fin=True, bint rsv1=False):
    """Encode one server frame: unmasked, with the minimal length encoding."""
    cdef Py_buffer view
    cdef bint have_view = False
    cdef const char* src
    cdef Py_ssize_t n, hlen
    cdef unsigned char* out_p
    cdef bytes out
    cdef int k
    if opcode < 0 or opcode > 0x0F:
        raise ValueError(f"invalid opcode {opcode}")
    if PyBytes_CheckExact(payload):
        src = PyBytes_AS_STRING(payload)
        n = PyBytes_GET_SIZE(payload)
    else:
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        have_view = True
        src = <const char*>view.buf
        n = view.len
    try:
        if opcode >= OP_CLOSE and (n > MAX_CONTROL_PAYLOAD or not fin):
            raise ValueError("control frames must be final and carry at most 125 bytes")
        hlen = 2 if n < 126 else (4 if n < 65536 else 10)
        out = PyBytes_FromStringAndSize(NULL, hlen + n)
        out_p = <unsigned char*>PyBytes_AS_STRING(out)
        out_p[0] = <unsigned char>(opcode | (0x80 if fin else 0) | (0x40 if rsv1 else 0))
        if hlen == 2:
            out_p[1] = <unsigned char>n
        elif hlen == 4:
            out_p[1] = 126
            out_p[2] = <unsigned char>(n >> 8)
            out_p[3] = <unsigned char>(n & 0xFF)
        else:
            out_p[1] = 127
            for k in range(8):
                out_p[2 + k] = <unsigned char>((<uint64_t>n >> (8 * (7 - k))) & 0xFF)
        if n:
            memcpy(out_p + hlen, src, n)
    finally:
        if have_view:
            PyBuffer_Release(&view)
    return out


def encode_close(int code, str reason=""):
    """Encode a complete close frame; the reason is cut to 123 UTF-8 bytes on a boundary."""
    cdef bytes data
    cdef Py_ssize_t cut
    if code == 0 or code == NO_STATUS:
        return b"\x88\x00"
    if code < 0 or code > 0xFFFF:
        raise ValueError(f"invalid close code {code}")
    data = reason.encode("utf-8", "replace")
    if len(data) > MAX_CLOSE_REASON:
        cut = MAX_CLOSE_REASON
        while cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        data = data[:cut]
    return bytes((0x88, 2 + len(data), code >> 8, code & 0xFF)) + data
