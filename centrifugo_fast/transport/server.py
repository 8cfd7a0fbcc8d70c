"""Listeners and routes of one node, and the graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable

from .. import codes
from ..api.dispatch import ApiDispatcher
from ..api.http import HttpApi
from ..api.methods import ApiMethods
from ..config.schema import Config
from ..core.node import Node
from ..errors import ConfigError
from ..protocol.codec import Codec
from ..protocol.codec_json import JSON
from ..protocol.codec_protobuf import PROTOBUF
from ..protocol.deflate import DeflateConfig
from ..protocol.handshake import Accepted, HandshakePolicy
from .admission import ConnectionRateLimiter
from .client_ws import WebSocketClientTransport
from .http import HttpConnection, Request, Router, ServerContext, WebSocketRoute
from .websocket import MessageHandler, WebSocketConnection, WebSocketLimits

logger = logging.getLogger("centrifugo_fast.server")

SUBPROTOCOLS = ("centrifuge-json", "centrifuge-protobuf")


def _wants_protobuf(request: Request, accepted: Accepted) -> bool:
    if accepted.subprotocol == "centrifuge-protobuf":
        return True
    query = accepted.query
    return "protobuf" in query.get("format", ()) or "protobuf" in query.get("cf_protocol", ())


class Server:
    """The HTTP/WebSocket front of a Node."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.config: Config = node.config
        self.ctx = ServerContext(
            router=Router(), scheduler=node.flush_scheduler, timers=node.timers
        )
        self._listeners: list[asyncio.Server] = []
        self._build_routes()

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
                limits=WebSocketLimits(
                    max_message_size=cfg.websocket.message_size_limit,
                    max_queue_size=cfg.client.queue_max_size,
                ),
                handler_factory=self._client_handler,
                admit=self._admission(),
            )
            router.add_websocket(cfg.websocket.handler_prefix, route)
        if not cfg.http_api.disabled:
            api = HttpApi(ApiDispatcher(ApiMethods(self.node)), cfg.http_api)
            router.add(cfg.http_api.handler_prefix, api, prefix=True)

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
        header = self.config.client.user_id_http_header
        header_user = request.headers.get(header.lower(), "") if header else ""
        return WebSocketClientTransport(
            self.node,
            codec,
            app_level_ping=not native_ping,
            header_user=header_user,
            deflate=accepted.deflate,
        )

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
        listener = await loop.create_server(
            lambda: HttpConnection(self.ctx),
            host=cfg.address or None,
            port=cfg.port,
            reuse_address=True,
            backlog=4096,
        )
        self._listeners.append(listener)
        logger.info("serving on %s", ", ".join(f"{h}:{p}" for h, p in self.addresses))

    async def shutdown(self, timeout: float) -> None:
        """Stop accepting, disconnect clients with 3001, wait up to `timeout` for them."""
        self.ctx.closing = True
        for listener in self._listeners:
            listener.close()
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
    if config.pid_file:
        with open(config.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if reload is not None:
        loop.add_signal_handler(signal.SIGHUP, _reloader(node, reload))
    if on_started is not None:
        on_started(server)
    try:
        await stop.wait()
        logger.info("shutting down")
        await asyncio.wait_for(
            server.shutdown(config.shutdown.timeout), config.shutdown.timeout + 1.0
        )
    finally:
        node.timers.close()
        if config.pid_file:
            try:
                os.unlink(config.pid_file)
            except FileNotFoundError:
                pass


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
