"""HTTP/1.1 connections on asyncio + httptools: routing, limits, keep-alive, upgrades.

Requests on one connection are answered in order (pipelining-safe). A request to a
WebSocket route with upgrade headers is handed to a WebSocketConnection on the same
transport, together with any bytes read past the request.
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
from ..protocol.http11 import text_response
from .websocket import MessageHandler, WebSocketConnection, WebSocketLimits

logger = logging.getLogger("centrifugo_fast.http")


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


#: A plain HTTP handler returns the complete response bytes.
HttpHandler = Callable[[Request], Awaitable[bytes]]


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


class Router:
    """Maps paths to handlers: exact paths first, then the longest matching prefix."""

    def __init__(self) -> None:
        self._exact: dict[str, HttpHandler | WebSocketRoute] = {}
        self._prefixes: list[tuple[str, HttpHandler]] = []

    def add(self, path: str, handler: HttpHandler, *, prefix: bool = False) -> None:
        """Serve `path` (or every path under `path/` when `prefix`) with `handler`."""
        if prefix:
            self._prefixes.append((path.rstrip("/") + "/", handler))
            self._prefixes.sort(key=lambda item: -len(item[0]))
        self._exact[path] = handler

    def add_websocket(self, path: str, route: WebSocketRoute) -> None:
        """Serve WebSocket upgrades at `path`."""
        self._exact[path] = route

    def match(self, path: str) -> HttpHandler | WebSocketRoute | None:
        """The route for `path`, if any."""
        route = self._exact.get(path)
        if route is not None:
            return route
        for prefix, handler in self._prefixes:
            if path.startswith(prefix):
                return handler
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


class HttpConnection(asyncio.Protocol):
    """One client connection until (and unless) it upgrades."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self._limits = ctx.limits
        self._transport: asyncio.Transport | None = None
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

    # ---- asyncio.Protocol ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._ctx.connections.add(self)
        self._arm_timeout(self._limits.request_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._ctx.connections.discard(self)
        self._pending.clear()

    def data_received(self, data: bytes) -> None:
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
        length = self._headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._limits.max_body_size:
            self._error = RequestError(413)
            raise self._error

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._limits.max_body_size:
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
        )
        if self._parser.should_upgrade():
            self._upgrade = request
            return
        self._pending.append(request)
        if len(self._pending) >= self._limits.max_pipelined and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        if not self._serving:
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

    async def _dispatch(self, request: Request) -> bytes:
        route = self._ctx.router.match(request.path)
        if route is None:
            return text_response(404)
        if isinstance(route, WebSocketRoute):
            # A plain request to a WebSocket endpoint gets the handshake's own verdict.
            verdict = negotiate(request.method, request.query, request.headers, route.policy)
            if isinstance(verdict, Rejected):
                return verdict.response
            return text_response(400, "missing upgrade headers")
        try:
            return await route(request)
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
        if not isinstance(route, WebSocketRoute) or self._pending or self._serving:
            self._fail(404 if route is None else 400, "cannot upgrade this request")
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
        if generation != self._generation or self._closed or self._serving:
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
        """Close the connection if no request is in progress (server shutdown)."""
        if not self._serving and not self._pending and not self._in_request:
            self._close()
