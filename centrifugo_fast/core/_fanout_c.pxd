# Augmenting declarations: compile _fanout_py.py as centrifugo_fast.core._fanout_c.
cimport cython

# FAIL_* stay Python-visible constants (only used on failure paths).
cdef int _NO_KEY


cdef class FlushScheduler:
    cdef object _call_soon
    cdef list _pending
    cdef list _failed
    cdef bint _scheduled

    cpdef void schedule(self, Writer writer)
    cpdef void fail_later(self, Writer writer)
    @cython.locals(pending=list, failed=list, writer=Writer)
    cpdef void run(self)
    cpdef Py_ssize_t pending_count(self)


cdef class Writer:
    cdef public object transport
    cdef public FlushScheduler scheduler
    cdef public Py_ssize_t max_queue_size
    cdef public int encoding_key
    cdef public object on_failure
    cdef public list queue
    cdef public Py_ssize_t queued_bytes
    cdef public bint closed
    cdef public int failure

    @cython.locals(queue=list)
    cpdef void enqueue(self, bytes frame)
    cpdef void fail(self, int reason)
    cpdef void report_failure(self)
    @cython.locals(queue=list, buffered=Py_ssize_t)
    cpdef void flush(self)
    cpdef list drain(self)
    cpdef void close(self)


cdef class PreparedPush:
    cdef object _encode
    cdef int _key
    cdef object _frame
    cdef dict _others

    cpdef object frame(self, int key)


@cython.locals(count=Py_ssize_t, last_key=int, key=int, writer=Writer, frame=object)
cpdef Py_ssize_t broadcast(object writers, PreparedPush prepared)
