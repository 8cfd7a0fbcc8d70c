# Layout of the compiled frame parser (see _wsframe_c.pyx for what each field means).

cdef class FrameParser:
    # sink callbacks, looked up once in __init__
    cdef object _on_message
    cdef object _on_ping
    cdef object _on_pong
    cdef object _on_close
    cdef object _on_protocol_error

    cdef Py_ssize_t _max_message_size
    cdef bint _require_mask
    cdef bint _inflate             # permessage-deflate negotiated: RSV1 marks compressed messages
    cdef bint _closed
    cdef bint _in_scratch          # the last get_buffer() handed out the shared scratch buffer

    # per-parser receive buffer, only while a frame is incomplete: pending = [_pstart, _pend)
    cdef bytearray _pbuf
    cdef Py_ssize_t _pstart
    cdef Py_ssize_t _pend

    # the frame whose header has been consumed (state PAYLOAD)
    cdef int _state
    cdef int _fopcode
    cdef bint _fin
    cdef bint _fmasked
    cdef unsigned char _fmask[4]
    cdef Py_ssize_t _flen
    cdef Py_ssize_t _fdone         # payload bytes already unmasked (and UTF-8 checked if text)

    # a fragmented data message in progress (_mopcode != 0)
    cdef int _mopcode
    cdef bytearray _mbuf
    cdef bint _mdeflate            # the data message in progress is compressed (RSV1)
    cdef int _utf8                 # UTF-8 validator state of the text message in progress

    cdef void _drop(self) noexcept
    cdef int _updated(self, Py_ssize_t nbytes) except -1
    cdef int _keep_tail(self, bytearray buf, Py_ssize_t pos, Py_ssize_t end) except -1
    cdef int _fail(self, int code, str reason) except -1
    cdef Py_ssize_t _parse(self, bytearray buf, Py_ssize_t pos, Py_ssize_t end) except -1
    cdef int _advance(self, unsigned char* payload, Py_ssize_t upto) except -1
    cdef int _frame_done(self, bytearray buf, Py_ssize_t pos, Py_ssize_t flen) except -1
    cdef int _close_frame(self, const unsigned char* payload, Py_ssize_t n) except -1
    cdef int _inflated(self, int opcode, object data) except -1
