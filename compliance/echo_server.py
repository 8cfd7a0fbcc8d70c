"""An echo server on centrifugo-fast's own stack, for the Autobahn cases (kosoku).

It uses the production HTTP/upgrade handling, frame parser, writer and close logic; only the
MessageHandler differs: it echoes each text/binary message back. permessage-deflate is
negotiated as the server does with `websocket.compression` on (level 1, no min size), so the
compression cases (12.*, 13.*) run too. Not shipped in the wheel.
Run: python compliance/echo_server.py --port PORT (CENTRIFUGO_FAST_NO_EXTENSIONS=1 for the
pure twins).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from centrifugo_fast import twins  # noqa: E402
from centrifugo_fast.core.fanout import FlushScheduler  # noqa: E402
from centrifugo_fast.core.timers import TimerWheel  # noqa: E402
from centrifugo_fast.protocol.deflate import DeflateConfig  # noqa: E402
from centrifugo_fast.protocol.handshake import Accepted, HandshakePolicy  # noqa: E402
from centrifugo_fast.transport.http import (  # noqa: E402
    HttpConnection,
    Request,
    Router,
    ServerContext,
    WebSocketRoute,
)
from centrifugo_fast.transport.websocket import (  # noqa: E402
    MessageHandler,
    WebSocketConnection,
    WebSocketLimits,
)

# The suite's largest messages are 16 MiB (cases 9.*); echo needs room for them.
MAX_MESSAGE = 64 * 1024 * 1024


class EchoHandler:
    """Sends every message back with the same opcode."""

    encoding_key = 0

    def __init__(self) -> None:
        self.conn: WebSocketConnection | None = None

    def on_open(self, conn: WebSocketConnection) -> None:
        self.conn = conn

    def on_message(self, opcode: int, payload: memoryview) -> None:
        if self.conn is not None:
            self.conn.send(opcode, bytes(payload))

    def on_pong(self, payload: bytes) -> None:
        pass

    def on_close(self, code: int, reason: str) -> None:
        self.conn = None

    def on_writer_failure(self, reason: int) -> None:
        if self.conn is not None:
            self.conn.close(1011, "write failed")


def _echo(request: Request, accepted: Accepted) -> MessageHandler:
    return EchoHandler()


async def serve(host: str, port: int) -> None:
    """Serve WebSocket echo on every path until SIGINT/SIGTERM."""
    loop = asyncio.get_running_loop()
    router = Router()
    route = WebSocketRoute(
        policy=HandshakePolicy(
            check_origin=False, deflate=DeflateConfig(enabled=True, level=1, min_size=0)
        ),
        limits=WebSocketLimits(max_message_size=MAX_MESSAGE, max_queue_size=4 * MAX_MESSAGE),
        handler_factory=_echo,
    )
    router.add_websocket("/", route)
    ctx = ServerContext(router, FlushScheduler(loop.call_soon), TimerWheel(loop))
    server = await loop.create_server(lambda: HttpConnection(ctx), host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"echo server on {host}:{port}, frame parser twin: {twins.LOADED}", flush=True)
    await stop.wait()
    server.close()
    for conn in list(ctx.connections):
        if isinstance(conn, HttpConnection | WebSocketConnection):
            conn.abort()


def main() -> None:
    """Parse arguments and run the echo server (on uvloop when installed)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port))
    else:
        uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
