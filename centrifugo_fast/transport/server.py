"""Listeners and routes of one node, and the graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import threading
from collections.abc import Callable

from .. import codes
from ..admin.http import AdminUi, admin_ui
from ..api.dispatch import ApiDispatcher
from ..api.http import HttpApi
from ..api.methods import ApiMethods
from ..config.schema import Config
from ..config.tls import parse_http_addr
from ..core.gctune import tune_for_serving
from ..core.node import Node
from ..errors import ConfigError
from ..protocol.codec import Codec
from ..protocol.codec_json import JSON
from ..protocol.codec_protobuf import PROTOBUF
from ..protocol.deflate import DeflateConfig
from ..protocol.handshake import Accepted, HandshakePolicy
from .admission import ConnectionRateLimiter
from .autocert import Autocert
from .client_ws import WebSocketClientTransport
from .cors import MAX_BODY_SIZE, Cors
from .emulation import EmulationEndpoints
from .http import HttpConnection, Request, Router, ServerContext, WebSocketRoute
from .ops import MetricsEndpoint, health
from .sockjs import SockJSEndpoints, accepts_websocket
from .tls import listener_contexts, server_context
from .uni import UniStreamEndpoints, UniWebSocketClientTransport
from .websocket import MessageHandler, WebSocketConnection, WebSocketLimits

logger = logging.getLogger("centrifugo_fast.server")

SUBPROTOCOLS = ("centrifuge-json", "centrifuge-protobuf")

#: Default paths of the transports whose `handler_prefix` is left empty.
HTTP_STREAM_PATH = "/connection/http_stream"
SSE_PATH = "/connection/sse"
EMULATION_PATH = "/emulation"
UNI_WEBSOCKET_PATH = "/connection/uni_websocket"
UNI_SSE_PATH = "/connection/uni_sse"
UNI_HTTP_STREAM_PATH = "/connection/uni_http_stream"
SOCKJS_PATH = "/connection/sockjs"
#: A TLS handshake must complete this long after the TCP connection (slowloris guard; the
#: same bound Centrifugo puts on reading request headers).
TLS_HANDSHAKE_TIMEOUT = 10.0


def _wants_protobuf(request: Request, accepted: Accepted) -> bool:
    if accepted.subprotocol == "centrifuge-protobuf":
        return True
    query = accepted.query
    return "protobuf" in query.get("format", ()) or "protobuf" in query.get("cf_protocol", ())


def internal_address(config: Config) -> tuple[str, int] | None:
    """(host, port) of the internal listener, or None when it is the client listener."""
    cfg = config.http_server
    host = cfg.internal_address or cfg.address
    port = cfg.internal_port or cfg.port
    if (host, port) == (cfg.address, cfg.port):
        return None
    return host, port


class Server:
    """The HTTP/WebSocket front of a Node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.config: Config = node.config
        self.ctx = ServerContext(
            router=Router(), scheduler=node.flush_scheduler, timers=node.timers
        )
        #: Internal endpoints (server API, admin) get their own listener when
        #: http_server.internal_port/internal_address differ from the client ones (as in
        #: Centrifugo); None: everything is served on one listener. One set of connections
        #: for both, so the graceful shutdown covers them alike.
        self.internal_ctx: ServerContext | None = None
        if internal_address(self.config) is not None:
            self.internal_ctx = ServerContext(
                router=Router(),
                scheduler=node.flush_scheduler,
                timers=node.timers,
                connections=self.ctx.connections,
            )
        self.admin: AdminUi | None = None
        self._listeners: list[asyncio.Server] = []
        self.cors = Cors(self.config.client.allowed_origins)
        #: One admission check (and rate limiter) for every kind of new connection.
        self._admit = self._admission()
        #: Set when http_stream or sse is enabled (its `sessions` are the emulation sessions).
        self.emulation: EmulationEndpoints | None = None
        #: Set when SockJS is enabled (its `sessions` are the HTTP SockJS sessions).
        self.sockjs: SockJSEndpoints | None = None
        #: Certificates from ACME when http_server.tls_autocert is enabled.
        self.autocert: Autocert | None = None
        self._tls, self._internal_tls = self._tls_contexts()
        self._build_routes()

    def _tls_contexts(self) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
        """(client listener, internal listener) TLS contexts, None for plain TCP."""
        cfg = self.config.http_server
        main: ssl.SSLContext | None = None
        if cfg.tls_autocert.enabled:
            # As Centrifugo: automatic certificates take precedence over a fixed one.
            self.autocert = Autocert(cfg.tls_autocert)
            main = self.autocert.context
        elif cfg.tls.enabled:
            main = server_context(cfg.tls, "http_server.tls")
        return listener_contexts(self.config, main, self.internal_ctx is not None)

    def _build_routes(self) -> None:
        cfg = self.config
        router = self.ctx.router
        if not cfg.websocket.disabled:
            route = WebSocketRoute(
                policy=HandshakePolicy(
                    allowed_origins=tuple(cfg.client.allowed_origins),
                    subprotocols=SUBPROTOCOLS,
                    deflate=DeflateConfig(
                        enabled=cfg.websocket.compression,
                        level=cfg.websocket.compression_level,
                        min_size=cfg.websocket.compression_min_size,
                    ),
                ),
                limits=self._websocket_limits(),
                handler_factory=self._client_handler,
                admit=self._admit,
            )
            router.add_websocket(cfg.websocket.handler_prefix, route)
        dispatcher = ApiDispatcher(ApiMethods(self.node))
        internal = self.internal_router
        if not cfg.http_api.disabled:
            api = HttpApi(dispatcher, cfg.http_api, self.node.metrics)
            api_router = router if cfg.http_api.external else internal
            api_router.add(cfg.http_api.handler_prefix, api, prefix=True)
        self.admin = admin_ui(self.node, dispatcher, cfg)
        if self.admin is not None:
            self.admin.register(router if cfg.admin.external else internal)
        if cfg.health.enabled:
            internal.add(cfg.health.handler_prefix or "/health", health)
        if cfg.prometheus.enabled:
            internal.add(cfg.prometheus.handler_prefix or "/metrics", MetricsEndpoint(self.node))
        self._build_http_transports()

    def _build_http_transports(self) -> None:
        """Emulation, unidirectional and SockJS endpoints, as enabled."""
        cfg = self.config
        router = self.ctx.router
        admit = self._admit
        limit = MAX_BODY_SIZE
        if cfg.http_stream.enabled or cfg.sse.enabled:
            emulation = EmulationEndpoints(self.node, self.cors, admit, self._header_user)
            self.emulation = emulation
            router.add(EMULATION_PATH, emulation.emulation, max_body_size=limit)
            if cfg.http_stream.enabled:
                path = cfg.http_stream.handler_prefix or HTTP_STREAM_PATH
                router.add(path, emulation.http_stream, max_body_size=limit)
            if cfg.sse.enabled:
                router.add(cfg.sse.handler_prefix or SSE_PATH, emulation.sse, max_body_size=limit)
        if cfg.uni_sse.enabled or cfg.uni_http_stream.enabled:
            uni = UniStreamEndpoints(self.node, self.cors, admit, self._header_user)
            if cfg.uni_sse.enabled:
                path = cfg.uni_sse.handler_prefix or UNI_SSE_PATH
                router.add(path, uni.uni_sse, max_body_size=limit)
            if cfg.uni_http_stream.enabled:
                path = cfg.uni_http_stream.handler_prefix or UNI_HTTP_STREAM_PATH
                router.add(path, uni.uni_http_stream, max_body_size=limit)
        if cfg.uni_websocket.enabled:
            route = WebSocketRoute(
                policy=HandshakePolicy(allowed_origins=tuple(cfg.client.allowed_origins)),
                limits=self._websocket_limits(),
                handler_factory=self._uni_websocket_handler,
                admit=admit,
            )
            router.add_websocket(cfg.uni_websocket.handler_prefix or UNI_WEBSOCKET_PATH, route)
        if cfg.sockjs.enabled:
            prefix = (cfg.sockjs.handler_prefix or SOCKJS_PATH).rstrip("/")
            sockjs = SockJSEndpoints(self.node, prefix, self.cors, admit, self._header_user)
            self.sockjs = sockjs
            route = WebSocketRoute(
                policy=HandshakePolicy(allowed_origins=tuple(cfg.client.allowed_origins)),
                limits=self._websocket_limits(),
                handler_factory=lambda request, _accepted: sockjs.websocket_transport(request),
                admit=admit,
                fallback=sockjs.handle,
                accepts=accepts_websocket(prefix),
            )
            router.add_websocket(prefix, route, prefix=True, max_body_size=limit)

    def _websocket_limits(self) -> WebSocketLimits:
        return WebSocketLimits(
            max_message_size=self.config.websocket.message_size_limit,
            max_queue_size=self.config.client.queue_max_size,
        )

    def _header_user(self, request: Request) -> str:
        """The user ID a trusted proxy put in client.user_id_http_header ("" = none)."""
        header = self.config.client.user_id_http_header
        return request.headers.get(header.lower(), "") if header else ""

    def _uni_websocket_handler(self, request: Request, accepted: Accepted) -> MessageHandler:
        values = accepted.query.get("cf_connect")
        return UniWebSocketClientTransport(
            self.node, values[0] if values else None, self._header_user(request)
        )

    def _admission(self) -> Callable[[], bool] | None:
        """HTTP-level admission as Centrifugo's ConnLimit middleware: 503 before upgrade."""
        cfg = self.config.client
        limit = cfg.connection_limit
        limiter = (
            ConnectionRateLimiter(cfg.connection_rate_limit)
            if cfg.connection_rate_limit > 0
            else None
        )
        if not limit and limiter is None:
            return None
        hub = self.node.hub

        def admit() -> bool:
            if limiter is not None and not limiter.allow():
                return False
            return not limit or hub.num_clients < limit

        return admit

    def _client_handler(self, request: Request, accepted: Accepted) -> MessageHandler:
        codec: Codec = PROTOBUF if _wants_protobuf(request, accepted) else JSON
        native_ping = "true" in accepted.query.get("cf_ws_frame_ping_pong", ())
        return WebSocketClientTransport(
            self.node,
            codec,
            app_level_ping=not native_ping,
            header_user=self._header_user(request),
            deflate=accepted.deflate,
        )

    @property
    def internal_router(self) -> Router:
        """Where internal endpoints go (API, admin, health, metrics)."""
        return self.internal_ctx.router if self.internal_ctx is not None else self.ctx.router

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every listening socket."""
        result = []
        for listener in self._listeners:
            for sock in listener.sockets:
                host, port = sock.getsockname()[:2]
                result.append((host, port))
        return result

    async def start(self) -> None:
        """Bind the listener(s)."""
        loop = asyncio.get_running_loop()
        cfg = self.config.http_server
        internal_ctx = self.internal_ctx
        internal = internal_address(self.config)
        if internal_ctx is not None and internal is not None:
            # Bound first: once the client port accepts, the internal one does too.
            tls = self._internal_tls
            self._listeners.append(
                await loop.create_server(
                    lambda: HttpConnection(internal_ctx),
                    host=internal[0] or None,
                    port=internal[1],
                    reuse_address=True,
                    ssl=tls,
                    ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if tls is not None else None,
                )
            )
            logger.info(
                "internal endpoints (API, admin, health, metrics) on %s:%d%s",
                *internal,
                " with TLS" if tls is not None else "",
            )
        autocert = self.autocert
        if autocert is not None:
            # The HTTP-01 challenge listener, plain HTTP (it redirects everything else).
            router = Router()
            router.add("/", autocert.http01, prefix=True)
            challenge_ctx = ServerContext(
                router=router,
                scheduler=self.node.flush_scheduler,
                timers=self.node.timers,
                connections=self.ctx.connections,
            )
            host, port = parse_http_addr(self.config.http_server.tls_autocert.http_addr)
            self._listeners.append(
                await loop.create_server(
                    lambda: HttpConnection(challenge_ctx),
                    host=host or None,
                    port=port,
                    reuse_address=True,
                )
            )
            logger.info("serving ACME HTTP-01 challenges on %s:%d", host, port)
        listener = await loop.create_server(
            lambda: HttpConnection(self.ctx),
            host=cfg.address or None,
            port=cfg.port,
            reuse_address=True,
            backlog=4096,
            ssl=self._tls,
            ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT if self._tls is not None else None,
        )
        self._listeners.append(listener)
        logger.info(
            "serving on %s%s",
            ", ".join(f"{h}:{p}" for h, p in self.addresses),
            " (client port with TLS)" if self._tls is not None else "",
        )
        if autocert is not None:
            await autocert.start()

    async def shutdown(self, timeout: float) -> None:
        """Stop accepting, disconnect clients with 3001, wait up to `timeout` for them."""
        self.ctx.closing = True
        if self.internal_ctx is not None:
            self.internal_ctx.closing = True
        for listener in self._listeners:
            listener.close()
        if self.autocert is not None:
            await self.autocert.close()
        await self.node.shutdown()
        for conn in list(self.ctx.connections):
            if isinstance(conn, HttpConnection):
                conn.close_idle()
            elif isinstance(conn, WebSocketConnection) and conn.is_open:
                conn.close(codes.DISCONNECT_SHUTDOWN.code, codes.DISCONNECT_SHUTDOWN.reason)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.ctx.connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.ctx.connections):
            if isinstance(conn, HttpConnection | WebSocketConnection):
                conn.abort()
        for listener in self._listeners:
            await listener.wait_closed()


async def serve(
    config: Config,
    *,
    reload: Callable[[], Config] | None = None,
    on_started: Callable[[Server], None] | None = None,
) -> None:
    """Run a node until SIGINT/SIGTERM, then shut down gracefully; SIGHUP calls `reload`."""
    loop = asyncio.get_running_loop()
    node = Node(config, loop)
    for warning in node.token_verifier.startup_warnings():
        logger.warning(warning)
    await node.start()
    server = Server(node)
    await server.start()
    tune_for_serving()
    if config.pid_file:
        with open(config.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    stop = asyncio.Event()
    install_signal_handlers(loop, stop.set, _reloader(node, reload) if reload else None)
    if on_started is not None:
        on_started(server)
    watchdog: threading.Timer | None = None
    try:
        await stop.wait()
        logger.info("shutting down")
        timeout = float(config.shutdown.timeout)
        watchdog = _start_watchdog(timeout + WATCHDOG_GRACE, config.pid_file)
        await server.shutdown(timeout)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        node.timers.close()
        if config.pid_file:
            try:
                os.unlink(config.pid_file)
            except FileNotFoundError:
                pass


#: The shutdown watchdog fires this long after shutdown.timeout: the graceful steps bound
#: themselves by the timeout, so only a hang (or a blocked event loop) reaches it.
WATCHDOG_GRACE = 1.0


def _start_watchdog(delay: float, pid_file: str) -> threading.Timer:
    """A thread that ends the process (exit 1, pid file removed) if shutdown overruns, as
    Centrifugo's shutdown.timeout does; a thread, so it fires even if the loop is stuck."""

    def fire() -> None:
        logger.error("shutdown timeout reached, exiting")
        if pid_file:
            try:
                os.unlink(pid_file)
            except OSError:
                pass
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(1)

    timer = threading.Timer(delay, fire)
    timer.daemon = True
    timer.start()
    return timer


def install_signal_handlers(
    loop: asyncio.AbstractEventLoop,
    on_stop: Callable[[], None],
    on_reload: Callable[[], None] | None,
) -> None:
    """SIGINT/SIGTERM call `on_stop`, SIGHUP `on_reload`, on the loop's thread.

    Windows has no SIGHUP and its event loops no add_signal_handler (NotImplementedError);
    there a plain signal.signal handler hands the callback to the loop thread-safely, so the
    wheel runs on asyncio's default loop where uvloop does not exist.
    """
    wanted: list[tuple[int, Callable[[], None]]] = [
        (signal.SIGINT, on_stop),
        (signal.SIGTERM, on_stop),
    ]
    sighup = getattr(signal, "SIGHUP", None)
    if on_reload is not None and sighup is not None:
        wanted.append((sighup, on_reload))
    for sig, callback in wanted:
        try:
            loop.add_signal_handler(sig, callback)
        except NotImplementedError:

            def handler(_sig: int, _frame: object, callback: Callable[[], None] = callback) -> None:
                loop.call_soon_threadsafe(callback)

            signal.signal(sig, handler)


def _reloader(node: Node, reload: Callable[[], Config]) -> Callable[[], None]:
    def on_sighup() -> None:
        try:
            config = reload()
        except ConfigError as exc:
            logger.error("reload failed, keeping the running configuration: %s", exc)
            return
        node.reload(config)
        logger.info("reloaded token settings and channel options")

    return on_sighup


def run(config: Config, reload: Callable[[], Config] | None = None) -> None:
    """Run the server on uvloop when installed, else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config, reload=reload))
    else:
        uvloop.run(serve(config, reload=reload))
