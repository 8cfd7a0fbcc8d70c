"""HTTP/1.1 connections on asyncio + httptools: routing, limits, keep-alive, upgrades.

Requests on one connection are answered in order (pipelining-safe). A request to a
WebSocket route with upgrade headers is handed to a WebSocketConnection on the same
transport, together with any bytes read past the request. A handler may answer with a
StreamResponse instead of bytes: the connection then belongs to an HttpStream (chunked on
HTTP/1.1) until the stream ends; a kept-alive connection then serves its next request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import httptools

from ..core.eager import run_eagerly
from ..core.fanout import FlushScheduler
from ..core.timers import TimerWheel
from ..protocol.handshake import Accepted, HandshakePolicy, Rejected, negotiate
from ..protocol.http11 import render_response, text_response
from .websocket import MessageHandler, WebSocketConnection, WebSocketLimits

logger = logging.getLogger("centrifugo_fast.http")

#: After a streamed response that cannot be kept alive, the connection is dropped this long
#: after its close if the peer does not read what is left.
STREAM_CLOSE_TIMEOUT = 5.0


@dataclass(slots=True)
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    query: str
    #: Header names lower-cased; repeated headers joined with ", ".
    headers: dict[str, str]
    body: bytes
    keep_alive: bool
    #: "1.1" or "1.0" (a 1.0 response stream is not chunked and ends with the connection).
    http_version: str = "1.1"
    #: The client's address as the socket sees it (IP, or "" for a unix socket); a proxy in
    #: front shows up as itself, since forwarding headers can be forged.
    peer: str = ""


class HttpStream:
    """The body of a streaming response, written as it is produced.

    Writer-compatible (`write`, `get_write_buffer_size`): each `write` is one chunk of the
    chunked transfer encoding (HTTP/1.1) or raw bytes (HTTP/1.0). The stream ends with `end`
    (the terminating chunk; the connection then serves its next request, or closes when it
    cannot be kept alive), `abort` (the connection is dropped), or when the peer goes away;
    `on_close` is called once in every case.
    """

    __slots__ = ("transport", "chunked", "on_close", "closed", "_ended")

    def __init__(
        self,
        transport: asyncio.Transport,
        chunked: bool,
        ended: Callable[[HttpStream], None],
    ) -> None:
        self.transport = transport
        self.chunked = chunked
        #: Called once when the stream is over (ended, aborted or lost).
        self.on_close: Callable[[], None] | None = None
        self.closed = False
        #: Tells the connection the response is complete.
        self._ended = ended

    def write(self, data: bytes) -> None:
        """Send `data` as one chunk (nothing for empty data, which would end the body)."""
        if self.closed or not data:
            return
        if self.chunked:
            self.transport.writelines((b"%x\r\n" % len(data), data, b"\r\n"))
        else:
            self.transport.write(data)

    def get_write_buffer_size(self) -> int:
        """Bytes the socket has not taken yet."""
        return self.transport.get_write_buffer_size()

    def end(self, last: bytes = b"") -> None:
        """Write `last` and complete the response."""
        if self.closed:
            return
        self.write(last)
        if self.chunked:
            self.transport.write(b"0\r\n\r\n")
        self._finish()
        self._ended(self)

    def abort(self) -> None:
        """Drop the connection at once (nothing more is written)."""
        if self.closed:
            return
        self._finish()
        self.transport.abort()

    def connection_lost(self) -> None:
        """The connection went away (called by the HttpConnection)."""
        self._finish()

    def _finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        callback, self.on_close = self.on_close, None
        if callback is not None:
            callback()


@dataclass(slots=True)
class StreamResponse:
    """A handler's answer that keeps the connection for a streamed body."""

    #: Response headers (Transfer-Encoding and Connection are added).
    headers: list[tuple[str, str]]
    #: Called with the stream right after the response head was written.
    on_start: Callable[[HttpStream], None]
    status: int = 200


#: A plain HTTP handler returns the complete response bytes, or a StreamResponse.
HttpHandler = Callable[[Request], Awaitable[bytes | StreamResponse]]


class RequestError(Exception):
    """A request is refused before it reaches a handler (limits, bad framing)."""

    def __init__(self, status: int, reason: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class WebSocketRoute:
    """A route that upgrades to WebSocket."""

    policy: HandshakePolicy
    limits: WebSocketLimits
    #: Builds the MessageHandler for an accepted handshake.
    handler_factory: Callable[[Request, Accepted], MessageHandler]
    #: Admission check run before the handshake; False answers 503.
    admit: Callable[[], bool] | None = None
    #: Serves plain (non-upgrade) requests to this route; None answers the handshake verdict.
    fallback: HttpHandler | None = None
    #: For a prefix route: which paths may upgrade (others get 404).
    accepts: Callable[[str], bool] | None = None


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Per-listener request limits."""

    max_url_size: int = 8192
    max_header_size: int = 65536
    max_body_size: int = 16 * 1024 * 1024
    #: A request must be fully received this long after it starts (slowloris guard).
    request_timeout: float = 30.0
    #: An idle keep-alive connection is closed after this long.
    keep_alive_timeout: float = 75.0
    #: Requests queued on one connection before reading pauses.
    max_pipelined: int = 16


Route = HttpHandler | WebSocketRoute


class Router:
    """Maps paths to handlers: exact paths first, then the longest matching prefix."""

    def __init__(self) -> None:
        self._exact: dict[str, Route] = {}
        self._prefixes: list[tuple[str, Route]] = []
        self._exact_limits: dict[str, int] = {}
        self._prefix_limits: list[tuple[str, int]] = []

    def _add(self, path: str, route: Route, prefix: bool, max_body_size: int | None) -> None:
        self._exact[path] = route
        if max_body_size is not None:
            self._exact_limits[path] = max_body_size
        if prefix:
            under = path.rstrip("/") + "/"
            self._prefixes.append((under, route))
            self._prefixes.sort(key=lambda item: -len(item[0]))
            if max_body_size is not None:
                self._prefix_limits.append((under, max_body_size))
                self._prefix_limits.sort(key=lambda item: -len(item[0]))

    def add(
        self,
        path: str,
        handler: HttpHandler,
        *,
        prefix: bool = False,
        max_body_size: int | None = None,
    ) -> None:
        """Serve `path` (or every path under `path/` when `prefix`) with `handler`.

        `max_body_size` lowers the listener's body limit for these paths (413 beyond it).
        """
        self._add(path, handler, prefix, max_body_size)

    def add_websocket(
        self,
        path: str,
        route: WebSocketRoute,
        *,
        prefix: bool = False,
        max_body_size: int | None = None,
    ) -> None:
        """Serve WebSocket upgrades at `path` (and plain requests with `route.fallback`)."""
        self._add(path, route, prefix, max_body_size)

    def match(self, path: str) -> Route | None:
        """The route for `path`, if any."""
        route = self._exact.get(path)
        if route is not None:
            return route
        for prefix, handler in self._prefixes:
            if path.startswith(prefix):
                return handler
        return None

    def body_limit(self, path: str) -> int | None:
        """The body size limit of the route serving `path`, if it has its own."""
        limit = self._exact_limits.get(path)
        if limit is not None or path in self._exact:
            return limit
        for prefix, value in self._prefix_limits:
            if path.startswith(prefix):
                return value
        return None


@dataclass(eq=False)
class ServerContext:
    """What every connection of one listener shares."""

    router: Router
    scheduler: FlushScheduler
    timers: TimerWheel
    limits: HttpLimits = HttpLimits()
    #: Open connections (HTTP and upgraded), for a graceful shutdown.
    connections: set[asyncio.BaseProtocol] = field(default_factory=set)
    closing: bool = False


def _peer_host(peername: object) -> str:
    """The host part of a socket's peer name: (host, port[, flow, scope]) for TCP."""
    if isinstance(peername, tuple) and peername and isinstance(peername[0], str):
        return peername[0]
    return ""


class HttpConnection(asyncio.Protocol):
    """One client connection until (and unless) it upgrades."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._limits = ctx.limits
        self._transport: asyncio.Transport | None = None
        self._peer = ""
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[str, str] = {}
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._error: RequestError | None = None
        self._upgrade: Request | None = None
        self._pending: deque[Request] = deque()
        self._serving = False
        self._closed = False
        self._paused = False
        self._generation = 0
        self._in_request = False
        self._body_limit = self._limits.max_body_size
        #: Set while a streaming response owns the connection.
        self._stream: HttpStream | None = None
        self._stream_keep_alive = False

    # ---- asyncio.Protocol ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._peer = _peer_host(transport.get_extra_info("peername"))
        self._ctx.connections.add(self)
        self._arm_timeout(self._limits.request_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._ctx.connections.discard(self)
        self._pending.clear()
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.connection_lost()

    def data_received(self, data: bytes) -> None:
        # While a response streams, a next request is parsed and queued, and served after
        # the stream ends (keep-alive clients send one only after the response completed).
        if self._closed:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._on_upgrade(data[exc.args[0] :])
        except httptools.HttpParserCallbackError:
            error = self._error or RequestError(400)
            self._fail(error.status, error.reason)
        except httptools.HttpParserError as exc:
            self._fail(400, f"malformed request: {exc}")

    # ---- httptools callbacks ----

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._header_bytes = 0
        self._body = []
        self._body_size = 0
        self._in_request = True

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_url_size:
            self._error = RequestError(414)
            raise self._error

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self._limits.max_header_size:
            self._error = RequestError(431)
            raise self._error
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self._headers.get(key)
        self._headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        limit = self._limits.max_body_size
        try:
            path = httptools.parse_url(self._url).path
        except httptools.HttpParserInvalidURLError:
            path = None
        if path:
            route_limit = self._ctx.router.body_limit(path.decode("utf-8", "replace"))
            if route_limit is not None:
                limit = min(limit, route_limit)
        self._body_limit = limit
        length = self._headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            self._error = RequestError(413)
            raise self._error

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._body_limit:
            self._error = RequestError(413)
            raise self._error
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_request = False
        parsed = httptools.parse_url(self._url)
        request = Request(
            method=self._parser.get_method().decode("ascii", "replace"),
            path=(parsed.path or b"/").decode("utf-8", "replace"),
            query=(parsed.query or b"").decode("utf-8", "replace"),
            headers=self._headers,
            body=b"".join(self._body),
            keep_alive=bool(self._parser.should_keep_alive()),
            http_version=self._parser.get_http_version(),
            peer=self._peer,
        )
        if self._parser.should_upgrade():
            self._upgrade = request
            return
        self._pending.append(request)
        if len(self._pending) >= self._limits.max_pipelined and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        if not self._serving and self._stream is None:
            self._serving = True
            run_eagerly(self._serve(), asyncio.get_running_loop())

    # ---- serving ----

    async def _serve(self) -> None:
        try:
            while self._pending and not self._closed:
                request = self._pending.popleft()
                response = await self._dispatch(request)
                if self._closed or self._transport is None:
                    return
                if isinstance(response, StreamResponse):
                    self._start_stream(request, response, self._transport)
                    return
                keep_alive = request.keep_alive and not self._ctx.closing
                self._transport.write(response)
                if not keep_alive:
                    self._close()
                    return
                if self._paused and len(self._pending) < self._limits.max_pipelined:
                    self._paused = False
                    self._transport.resume_reading()
        finally:
            self._serving = False
        if not self._closed and not self._in_request:
            self._arm_timeout(self._limits.keep_alive_timeout)

    def _start_stream(
        self, request: Request, response: StreamResponse, transport: asyncio.Transport
    ) -> None:
        """Write the response head and hand the connection to an HttpStream."""
        chunked = request.http_version != "1.0"
        keep_alive = chunked and request.keep_alive
        headers = list(response.headers)
        if chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        if keep_alive:
            headers.append(("Connection", "keep-alive"))
        head = render_response(
            response.status, headers, keep_alive=keep_alive, content_length=False
        )
        transport.write(head)
        stream = HttpStream(transport, chunked, self._stream_ended)
        self._stream = stream
        self._stream_keep_alive = keep_alive
        response.on_start(stream)

    def _stream_ended(self, stream: HttpStream) -> None:
        """A streamed response is complete: serve the next request, or close."""
        if self._stream is not stream or self._closed or self._transport is None:
            return
        self._stream = None
        if not self._stream_keep_alive or self._ctx.closing:
            self._close()
            # A peer that stopped reading would keep the connection open forever.
            self._ctx.timers.call_later(STREAM_CLOSE_TIMEOUT, self._transport.abort)
            return
        if self._pending:
            self._serving = True
            run_eagerly(self._serve(), asyncio.get_running_loop())
        elif not self._in_request:
            self._arm_timeout(self._limits.keep_alive_timeout)

    async def _dispatch(self, request: Request) -> bytes | StreamResponse:
        route = self._ctx.router.match(request.path)
        if route is None:
            return text_response(404)
        if isinstance(route, WebSocketRoute):
            if route.fallback is not None:
                return await self._call(route.fallback, request)
            # A plain request to a WebSocket endpoint gets the handshake's own verdict.
            verdict = negotiate(request.method, request.query, request.headers, route.policy)
            if isinstance(verdict, Rejected):
                return verdict.response
            return text_response(400, "missing upgrade headers")
        return await self._call(route, request)

    async def _call(self, handler: HttpHandler, request: Request) -> bytes | StreamResponse:
        try:
            return await handler(request)
        except Exception:
            logger.exception("error serving %s %s", request.method, request.path)
            return text_response(500)

    def _on_upgrade(self, leftover: bytes) -> None:
        request = self._upgrade
        transport = self._transport
        self._upgrade = None
        if request is None or transport is None or self._closed:
            return
        route = self._ctx.router.match(request.path)
        if (
            not isinstance(route, WebSocketRoute)
            or self._pending
            or self._serving
            or self._stream is not None
        ):
            self._fail(404 if route is None else 400, "cannot upgrade this request")
            return
        if route.accepts is not None and not route.accepts(request.path):
            self._fail(404, "not found")
            return
        if self._ctx.closing:
            self._fail(503, "shutting down")
            return
        if route.admit is not None and not route.admit():
            self._fail(503, "too many new connections")
            return
        verdict = negotiate(request.method, request.query, request.headers, route.policy)
        if isinstance(verdict, Rejected):
            logger.debug("handshake rejected: %s", verdict.reason)
            transport.write(verdict.response)
            self._close()
            return
        handler = route.handler_factory(request, verdict)
        transport.write(verdict.response)
        self._closed = True
        self._ctx.connections.discard(self)
        conn = WebSocketConnection(
            transport,
            handler,
            route.limits,
            self._ctx.scheduler,
            self._ctx.timers,
            self._ctx.connections,
            deflate=verdict.deflate,
        )
        conn.start(leftover)

    # ---- timeouts and closing ----

    def _arm_timeout(self, delay: float) -> None:
        self._generation += 1
        generation = self._generation
        self._ctx.timers.call_later(delay, lambda: self._timed_out(generation))

    def _timed_out(self, generation: int) -> None:
        if (
            generation != self._generation
            or self._closed
            or self._serving
            or self._stream is not None
        ):
            return
        if self._in_request:
            self._fail(408, "request timeout")
        elif not self._pending:
            self._close()

    def _fail(self, status: int, reason: str = "") -> None:
        if self._closed or self._transport is None:
            return
        self._transport.write(text_response(status, reason, keep_alive=False))
        self._close()

    def _close(self) -> None:
        if not self._closed and self._transport is not None:
            self._closed = True
            self._ctx.connections.discard(self)
            self._transport.close()

    def abort(self) -> None:
        """Drop the TCP connection at once."""
        self._closed = True
        self._ctx.connections.discard(self)
        if self._transport is not None:
            self._transport.abort()

    def close_idle(self) -> None:
        """Close the connection if no request is in progress (server shutdown).

        A response stream still open here has no connected client any more (the node
        disconnected those first): it just ends.
        """
        if self._stream is not None:
            self._stream.end()
        elif not self._serving and not self._pending and not self._in_request:
            self._close()
