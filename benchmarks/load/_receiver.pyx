# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The generator's compiled receive loop: epoll over many WebSocket client sockets, in C.

Once connections are set up (handshake, connect, subscribe) by asyncio, their sockets are
handed to a Receiver, which a separate thread runs without the GIL. It parses server frames,
counts benchmark publications (the ``{"t":`` marker of `wire`), bins their end-to-end latency
into a fixed histogram, and answers pings, so the generator's cost per delivery is a few
hundred nanoseconds and no Python object is created per message.
"""

from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memmove, memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec
from posix.unistd cimport close


cdef extern from "<sys/epoll.h>" nogil:
    ctypedef union epoll_data_t:
        void *ptr
        int fd
        uint32_t u32
        uint64_t u64

    struct epoll_event:
        uint32_t events
        epoll_data_t data

    int epoll_create1(int flags)
    int epoll_ctl(int epfd, int op, int fd, epoll_event *event)
    int epoll_wait(int epfd, epoll_event *events, int maxevents, int timeout)
    enum:
        EPOLLIN
        EPOLLERR
        EPOLLHUP
        EPOLL_CTL_ADD
        EPOLL_CTL_DEL
        EPOLL_CLOEXEC

cdef extern from "<sys/socket.h>" nogil:
    ssize_t recv(int sockfd, void *buf, size_t n, int flags)
    ssize_t send(int sockfd, const void *buf, size_t n, int flags)
    enum:
        MSG_NOSIGNAL
        MSG_DONTWAIT

cdef extern from "<string.h>" nogil:
    void *memmem(const void *haystack, size_t haystacklen, const void *needle, size_t needlelen)

# One histogram bucket per 10 us of latency, up to 10 s; the last bucket takes the rest.
cdef enum:
    BUCKET_NS = 10000
    BUCKETS = 1000000
    INITIAL_BUFFER = 16384
    EVENTS = 512
    STAMP_DIGITS = 19
    MARK_LEN = 5
    JSON_PONG_LEN = 8
    PB_PONG_LEN = 7

cdef int64_t STAMP_BASE = 1000000000000000000

cdef const char *MARK = b'{"t":'

# Pongs go out masked with an all-zero key: a valid mask that leaves the payload as is.
cdef const char *JSON_PONG = b"\x81\x82\x00\x00\x00\x00{}"
cdef const char *PB_PONG = b"\x82\x81\x00\x00\x00\x00\x00"


cdef struct Conn:
    int fd
    int open
    uint8_t *buf
    size_t cap
    size_t len


cdef inline int64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef class Receiver:
    """Counts deliveries and their latency on handed-over sockets; see the module docstring."""

    cdef int _ep
    cdef Conn *_conns
    cdef int _n
    cdef int _max
    cdef bint _protobuf
    cdef volatile int _stop
    cdef volatile int _recording
    cdef uint32_t *_hist
    cdef public uint64_t delivered
    cdef public uint64_t recorded
    cdef public uint64_t pings
    cdef public uint64_t closed

    def __cinit__(self, int max_conns, bint protobuf):
        self._ep = epoll_create1(EPOLL_CLOEXEC)
        if self._ep < 0:
            raise OSError(errno, "epoll_create1 failed")
        self._conns = <Conn *>malloc(max_conns * sizeof(Conn))
        self._hist = <uint32_t *>malloc(BUCKETS * sizeof(uint32_t))
        if self._conns == NULL or self._hist == NULL:
            raise MemoryError()
        memset(self._hist, 0, BUCKETS * sizeof(uint32_t))
        self._max = max_conns
        self._n = 0
        self._protobuf = protobuf

    def __dealloc__(self):
        cdef int i
        if self._conns != NULL:
            for i in range(self._n):
                if self._conns[i].buf != NULL:
                    free(self._conns[i].buf)
                if self._conns[i].open:
                    close(self._conns[i].fd)
            free(self._conns)
        if self._hist != NULL:
            free(self._hist)
        if self._ep >= 0:
            close(self._ep)

    def add(self, int fd):
        """Take over `fd` (a dup of a connected, non-blocking client socket)."""
        cdef epoll_event ev
        if self._n >= self._max:
            raise ValueError("receiver is full")
        cdef Conn *c = &self._conns[self._n]
        c.fd = fd
        c.open = 1
        c.cap = INITIAL_BUFFER
        c.len = 0
        c.buf = <uint8_t *>malloc(c.cap)
        if c.buf == NULL:
            raise MemoryError()
        ev.events = EPOLLIN
        ev.data.u32 = <uint32_t>self._n
        if epoll_ctl(self._ep, EPOLL_CTL_ADD, fd, &ev) < 0:
            free(c.buf)
            c.buf = NULL
            raise OSError(errno, "epoll_ctl failed")
        self._n += 1

    def run(self):
        """Receive until stop() is called (blocking; run it in a thread)."""
        with nogil:
            self._loop()

    def stop(self):
        """Make run() return within 50 ms."""
        self._stop = 1

    def start_window(self):
        """Clear the latency histogram and start recording into it."""
        self._recording = 0
        memset(self._hist, 0, BUCKETS * sizeof(uint32_t))
        self.recorded = 0
        self._recording = 1

    def stop_window(self):
        """Stop recording latencies."""
        self._recording = 0

    def percentile(self, double q):
        """The q-quantile (0..1) of the recorded latencies, in ms (NaN when none)."""
        cdef uint64_t total = 0
        cdef uint64_t seen = 0
        cdef uint64_t rank
        cdef int i
        for i in range(BUCKETS):
            total += self._hist[i]
        if total == 0:
            return float("nan")
        rank = <uint64_t>(q * total)
        if rank >= total:
            rank = total - 1
        for i in range(BUCKETS):
            seen += self._hist[i]
            if seen > rank:
                return (i + 0.5) * BUCKET_NS / 1e6
        return <double>BUCKETS * BUCKET_NS / 1e6

    cdef void _loop(self) noexcept nogil:
        cdef epoll_event events[EVENTS]
        cdef int n, i
        while not self._stop:
            n = epoll_wait(self._ep, events, EVENTS, 50)
            if n < 0:
                if errno == EINTR:
                    continue
                return
            for i in range(n):
                self._read(&self._conns[events[i].data.u32])

    cdef void _drop(self, Conn *c) noexcept nogil:
        epoll_ctl(self._ep, EPOLL_CTL_DEL, c.fd, NULL)
        close(c.fd)
        c.open = 0
        self.closed += 1

    cdef void _read(self, Conn *c) noexcept nogil:
        cdef ssize_t r
        cdef uint8_t *grown
        if not c.open:
            return
        if c.len == c.cap:
            grown = <uint8_t *>realloc(c.buf, c.cap * 2)
            if grown == NULL:
                self._drop(c)
                return
            c.buf = grown
            c.cap *= 2
        r = recv(c.fd, c.buf + c.len, c.cap - c.len, MSG_DONTWAIT)
        if r == 0:
            self._drop(c)
            return
        if r < 0:
            if errno != EAGAIN and errno != EINTR:
                self._drop(c)
            return
        c.len += r
        self._parse(c, _now_ns())

    cdef void _parse(self, Conn *c, int64_t now) noexcept nogil:
        cdef size_t pos = 0
        cdef size_t avail, hl, plen, k
        cdef uint8_t b1
        cdef int opcode
        cdef uint8_t *grown
        while True:
            avail = c.len - pos
            if avail < 2:
                break
            opcode = c.buf[pos] & 0x0F
            b1 = c.buf[pos + 1]
            plen = b1 & 0x7F
            hl = 2
            if plen == 126:
                if avail < 4:
                    break
                plen = (<size_t>c.buf[pos + 2] << 8) | c.buf[pos + 3]
                hl = 4
            elif plen == 127:
                if avail < 10:
                    break
                plen = 0
                for k in range(8):
                    plen = (plen << 8) | c.buf[pos + 2 + k]
                hl = 10
            if b1 & 0x80:
                hl += 4  # a masked server frame is a protocol error; skip the key anyway
            if avail < hl + plen:
                if hl + plen > c.cap:
                    # Make room for the whole frame (moving what we have to the front first).
                    memmove(c.buf, c.buf + pos, avail)
                    c.len = avail
                    pos = 0
                    grown = <uint8_t *>realloc(c.buf, hl + plen)
                    if grown == NULL:
                        self._drop(c)
                        return
                    c.buf = grown
                    c.cap = hl + plen
                break
            self._frame(c, opcode, c.buf + pos + hl, plen, now)
            if not c.open:
                return
            pos += hl + plen
        if pos:
            memmove(c.buf, c.buf + pos, c.len - pos)
            c.len -= pos

    cdef void _frame(self, Conn *c, int opcode, uint8_t *p, size_t n, int64_t now) noexcept nogil:
        if opcode == 0x8:
            self._drop(c)
            return
        if opcode == 0x9:
            self._pong(c, p, n)
            return
        if opcode != 0x1 and opcode != 0x2 and opcode != 0x0:
            return
        self._count(p, n, now)
        if self._protobuf:
            self._pb_pings(c, p, n)
        else:
            self._json_pings(c, p, n)

    cdef void _count(self, uint8_t *p, size_t n, int64_t now) noexcept nogil:
        cdef uint8_t *end = p + n
        cdef uint8_t *hit
        cdef int64_t stamp, latency
        cdef int64_t bucket
        cdef int k
        while p < end:
            hit = <uint8_t *>memmem(p, end - p, MARK, MARK_LEN)
            if hit == NULL:
                return
            self.delivered += 1
            p = hit + MARK_LEN
            if end - p < STAMP_DIGITS:
                return
            if self._recording:
                stamp = 0
                for k in range(STAMP_DIGITS):
                    stamp = stamp * 10 + (p[k] - 48)
                latency = now + STAMP_BASE - stamp
                bucket = latency // BUCKET_NS
                if bucket < 0:
                    bucket = 0
                elif bucket >= BUCKETS:
                    bucket = BUCKETS - 1
                self._hist[bucket] += 1
                self.recorded += 1
            p += STAMP_DIGITS

    cdef void _json_pings(self, Conn *c, uint8_t *p, size_t n) noexcept nogil:
        # The server's ping is an empty object on a line of its own.
        cdef size_t start = 0
        cdef size_t i
        for i in range(n + 1):
            if i == n or p[i] == 10:
                if i - start == 2 and p[start] == 123 and p[start + 1] == 125:
                    self.pings += 1
                    send(c.fd, JSON_PONG, JSON_PONG_LEN, MSG_NOSIGNAL | MSG_DONTWAIT)
                start = i + 1

    cdef void _pb_pings(self, Conn *c, uint8_t *p, size_t n) noexcept nogil:
        # Replies are varint-length-delimited; an empty one is a ping.
        cdef size_t pos = 0
        cdef uint64_t length
        cdef int shift
        cdef uint8_t byte
        while pos < n:
            length = 0
            shift = 0
            while pos < n:
                byte = p[pos]
                pos += 1
                length |= <uint64_t>(byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
            if length == 0:
                self.pings += 1
                send(c.fd, PB_PONG, PB_PONG_LEN, MSG_NOSIGNAL | MSG_DONTWAIT)
            pos += length

    cdef void _pong(self, Conn *c, uint8_t *p, size_t n) noexcept nogil:
        cdef uint8_t frame[131]
        if n > 125:
            return
        frame[0] = 0x8A
        frame[1] = 0x80 | <uint8_t>n
        memset(frame + 2, 0, 4)
        memcpy(frame + 6, p, n)
        send(c.fd, frame, 6 + n, MSG_NOSIGNAL | MSG_DONTWAIT)


# ---- connect storm -------------------------------------------------------------------------

cdef extern from "<sys/socket.h>" nogil:
    int socket(int domain, int type, int protocol)
    int connect(int sockfd, const void *addr, unsigned int addrlen)
    int getsockopt(int sockfd, int level, int optname, void *optval, unsigned int *optlen)
    int setsockopt(int sockfd, int level, int optname, const void *optval, unsigned int optlen)
    enum:
        AF_INET
        SOCK_STREAM
        SOCK_NONBLOCK
        SOCK_CLOEXEC
        SOL_SOCKET
        SO_ERROR
        SO_LINGER
    struct linger:
        int l_onoff
        int l_linger

cdef extern from "<netinet/in.h>" nogil:
    struct in_addr:
        uint32_t s_addr
    struct sockaddr_in:
        unsigned short sin_family
        unsigned short sin_port
        in_addr sin_addr
    unsigned short htons(unsigned short)

cdef extern from "<arpa/inet.h>" nogil:
    int inet_pton(int af, const char *src, void *dst)

cdef extern from "<errno.h>" nogil:
    enum:
        EINPROGRESS

cdef extern from "<sys/epoll.h>" nogil:
    enum:
        EPOLLOUT
        EPOLL_CTL_MOD

cdef enum:
    ST_CONNECTING = 1
    ST_WAITING = 2
    ST_DONE = 3
    ST_UPGRADING = 4
    STORM_BUF = 4096


cdef struct Pending:
    int fd
    int state
    int index
    size_t len
    size_t head  # bytes of the 101 response (0 until it is complete)
    uint8_t buf[STORM_BUF]


cdef int _varint(uint8_t *p, size_t n, size_t *pos, uint64_t *value) noexcept nogil:
    cdef int shift = 0
    cdef uint8_t byte
    value[0] = 0
    while pos[0] < n and shift < 64:
        byte = p[pos[0]]
        pos[0] += 1
        value[0] |= <uint64_t>(byte & 0x7F) << shift
        if byte < 0x80:
            return 1
        shift += 7
    return 0


cdef int _pb_connect_verdict(uint8_t *p, size_t n) noexcept nogil:
    """A varint-delimited Reply: 1 if it has a connect result (field 5), else -1."""
    cdef size_t pos = 0
    cdef uint64_t length, key, value
    cdef size_t end
    if not _varint(p, n, &pos, &length) or pos + length > n:
        return -1
    end = pos + length
    while pos < end:
        if not _varint(p, end, &pos, &key):
            return -1
        if key >> 3 == 5 and (key & 7) == 2:
            return 1
        if key >> 3 == 2:
            return -1  # an error
        if (key & 7) == 0:
            if not _varint(p, end, &pos, &value):
                return -1
        elif (key & 7) == 2:
            if not _varint(p, end, &pos, &value):
                return -1
            pos += value
        else:
            return -1
    return -1


cdef int _upgrade_verdict(Pending *p) noexcept nogil:
    """0: need more bytes, 1: upgraded (p.head set), -1: refused."""
    cdef uint8_t *end_of_head = <uint8_t *>memmem(p.buf, p.len, b"\r\n\r\n", 4)
    if end_of_head == NULL:
        return -1 if p.len == STORM_BUF else 0
    if p.len < 12 or memmem(p.buf, 13, b" 101", 4) == NULL:
        return -1
    p.head = <size_t>(end_of_head - p.buf) + 4
    return 1


cdef int _storm_verdict(Pending *p, bint protobuf) noexcept nogil:
    """After the upgrade: 0: need more bytes, 1: connected, -1: refused or broken."""
    cdef size_t pos = p.head, plen, hl
    cdef uint8_t *payload
    if p.len - pos < 2:
        return 0
    if (p.buf[pos] & 0x0F) == 0x8:
        return -1
    plen = p.buf[pos + 1] & 0x7F
    hl = 2
    if plen == 126:
        if p.len - pos < 4:
            return 0
        plen = (<size_t>p.buf[pos + 2] << 8) | p.buf[pos + 3]
        hl = 4
    elif plen == 127:
        return -1
    if p.len - pos < hl + plen:
        return -1 if pos + hl + plen > STORM_BUF else 0
    payload = p.buf + pos + hl
    if protobuf:
        return _pb_connect_verdict(payload, plen)
    if memmem(payload, plen, b'"connect":', 10) != NULL:
        return 1
    return -1


def storm(
    str host, int port, list upgrades, list frames, int concurrency, bint protobuf, double timeout
):
    """Open one connection per prepared request: send upgrades[i], wait for 101 (a client must
    not send frames before it), send frames[i] (the connect command), wait for the connect
    reply; at most `concurrency` in flight.

    Returns (connected, failed, seconds, fds): the connected sockets stay open so the server
    holds them; the caller closes them with `close_all`.
    """
    cdef int n = len(upgrades)
    cdef int ep = epoll_create1(EPOLL_CLOEXEC)
    cdef Pending *slots = <Pending *>malloc(concurrency * sizeof(Pending))
    cdef int *free_slots = <int *>malloc(concurrency * sizeof(int))
    cdef int nfree = concurrency
    cdef int next_index = 0, connected = 0, failed = 0, inflight = 0
    cdef epoll_event ev
    cdef epoll_event events[EVENTS]
    cdef sockaddr_in addr
    cdef int i, k, slot, fd, rc, err
    cdef unsigned int errlen
    cdef ssize_t r
    cdef Pending *p
    cdef int64_t started, deadline
    cdef int verdict
    cdef linger rst
    cdef list fds = []
    cdef list upgrade_bytes = [bytes(x) for x in upgrades]
    cdef list frame_bytes = [bytes(x) for x in frames]
    cdef bytes req
    if ep < 0 or slots == NULL or free_slots == NULL:
        raise MemoryError()
    rst.l_onoff = 1
    rst.l_linger = 0
    memset(&addr, 0, sizeof(addr))
    addr.sin_family = AF_INET
    addr.sin_port = htons(port)
    if inet_pton(AF_INET, host.encode(), &addr.sin_addr) != 1:
        raise ValueError(f"not an IPv4 address: {host}")
    for i in range(concurrency):
        free_slots[i] = concurrency - 1 - i
        slots[i].state = ST_DONE
    started = _now_ns()
    deadline = started + <int64_t>(timeout * 1e9)
    try:
        while connected + failed < n and _now_ns() < deadline:
            while nfree > 0 and next_index < n:
                fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
                if fd < 0:
                    raise OSError(errno, "socket failed")
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst))
                rc = connect(fd, &addr, sizeof(addr))
                if rc < 0 and errno != EINPROGRESS:
                    close(fd)
                    failed += 1
                    next_index += 1
                    continue
                nfree -= 1
                slot = free_slots[nfree]
                p = &slots[slot]
                p.fd = fd
                p.state = ST_CONNECTING
                p.index = next_index
                p.len = 0
                p.head = 0
                next_index += 1
                ev.events = EPOLLOUT
                ev.data.u32 = <uint32_t>slot
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)
                inflight += 1
            with nogil:
                k = epoll_wait(ep, events, EVENTS, 100)
            for i in range(k):
                slot = events[i].data.u32
                p = &slots[slot]
                if p.state == ST_CONNECTING:
                    err = 0
                    errlen = sizeof(err)
                    getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &errlen)
                    req = <bytes>upgrade_bytes[p.index]
                    if err != 0 or send(p.fd, <const char *>req, len(req), MSG_NOSIGNAL) != len(req):
                        verdict = -1
                    else:
                        p.state = ST_UPGRADING
                        ev.events = EPOLLIN
                        ev.data.u32 = <uint32_t>slot
                        epoll_ctl(ep, EPOLL_CTL_MOD, p.fd, &ev)
                        continue
                else:
                    r = recv(p.fd, p.buf + p.len, STORM_BUF - p.len, MSG_DONTWAIT)
                    if r < 0 and (errno == EAGAIN or errno == EINTR):
                        continue
                    if r <= 0:
                        verdict = -1
                    else:
                        p.len += r
                        if p.state == ST_UPGRADING:
                            verdict = _upgrade_verdict(p)
                            if verdict == 1:
                                req = <bytes>frame_bytes[p.index]
                                if send(p.fd, <const char *>req, len(req), MSG_NOSIGNAL) == len(req):
                                    p.state = ST_WAITING
                                    verdict = _storm_verdict(p, protobuf)
                                else:
                                    verdict = -1
                        else:
                            verdict = _storm_verdict(p, protobuf)
                        if verdict == 0:
                            continue
                epoll_ctl(ep, EPOLL_CTL_DEL, p.fd, NULL)
                if verdict == 1:
                    connected += 1
                    fds.append(p.fd)
                else:
                    failed += 1
                    close(p.fd)
                p.state = ST_DONE
                free_slots[nfree] = slot
                nfree += 1
                inflight -= 1
        seconds = (_now_ns() - started) / 1e9
        failed += n - connected - failed  # timed out
    finally:
        # Whatever is still in flight (a timeout or an error) is closed here.
        for i in range(concurrency):
            if slots[i].state != ST_DONE:
                close(slots[i].fd)
        free(slots)
        free(free_slots)
        close(ep)
    return connected, failed, seconds, fds


def close_all(list fds):
    """Close sockets returned by storm (with RST: no TIME_WAIT)."""
    cdef int fd
    for fd in fds:
        close(fd)
