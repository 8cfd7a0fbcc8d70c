# Augmenting declarations: compile _history_py.py as centrifugo_fast.engine._history_c.
cimport cython

cdef str _EPOCH_ALPHABET
cdef Py_ssize_t _EPOCH_LENGTH
cdef double _NONE
cdef object _heappush
cdef object _heappop
cdef object _new_tuple

cdef object _position(long long offset, str epoch)

cpdef str new_epoch()


@cython.final
cdef class HistoryRing:
    cdef readonly str epoch
    cdef readonly long long top_offset
    cdef list _slots
    cdef Py_ssize_t _head
    cdef Py_ssize_t _size
    cdef double _ttl_due
    cdef double _ttl_queued
    cdef double _meta_due
    cdef double _meta_queued

    @cython.locals(top=cython.longlong, slots=list, n=Py_ssize_t, head=Py_ssize_t)
    cpdef long long append(self, object pub, Py_ssize_t size)
    @cython.locals(slots=list, n=Py_ssize_t, head=Py_ssize_t)
    cdef void _resize(self, Py_ssize_t size)
    @cython.locals(slots=list, n=Py_ssize_t, start=Py_ssize_t, end=Py_ssize_t)
    cdef list _range(self, Py_ssize_t first, Py_ssize_t count)
    @cython.locals(
        slots=list, n=Py_ssize_t, top=cython.longlong, oldest=cython.longlong,
        start=cython.longlong, count=cython.longlong, out=list,
    )
    cpdef list since(self, long long offset, Py_ssize_t limit, bint reverse)
    @cython.locals(slots=list, n=Py_ssize_t, head=Py_ssize_t)
    cpdef object latest(self)
    cpdef void clear(self)


@cython.final
cdef class _Idempotent:
    cdef object position
    cdef double due
    cdef double queued


@cython.final
cdef class HistoryStore:
    cdef object _clock
    cdef double _default_meta_ttl
    cdef dict _streams
    cdef list _ttl_heap
    cdef list _meta_heap
    cdef dict _idempotent
    cdef list _idempotent_heap

    @cython.locals(ring=HistoryRing)
    cdef HistoryRing _stream(self, str channel)
    @cython.locals(ttl=double, deadline=double, queued=double)
    cdef void _touch(self, HistoryRing ring, str channel, double now, double meta_ttl)
    @cython.locals(now=double, ring=HistoryRing, deadline=double, queued=double, offset=cython.longlong)
    cpdef object add(self, str channel, object pub, Py_ssize_t size, double ttl, double meta_ttl)
    @cython.locals(ring=HistoryRing, top=cython.longlong, position=object, offset=object)
    cpdef tuple get(self, str channel, object since, Py_ssize_t limit, bint reverse, double meta_ttl)
    @cython.locals(ring=HistoryRing)
    cpdef void remove_history(self, str channel)
    @cython.locals(
        now=double, actions=Py_ssize_t, streams=dict, heap=list, deadline=double, due=double,
        ring=HistoryRing, cache=dict, iheap=list, entry=_Idempotent,
    )
    cpdef Py_ssize_t expire(self)
    @cython.locals(entry=_Idempotent)
    cpdef object idempotent_get(self, str channel, str key)
    @cython.locals(due=double, k=tuple, entry=_Idempotent)
    cpdef void idempotent_put(self, str channel, str key, object position, double ttl)
    cpdef Py_ssize_t pending_deadlines(self)
