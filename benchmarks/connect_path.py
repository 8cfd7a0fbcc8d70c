"""The Python cost of one JWT-authenticated WebSocket connect, without sockets.

    taskset -c 0 python -m benchmarks.connect_path [--connections 15000] [--layers]

Drives the production HttpConnection -> handshake -> WebSocketConnection -> Client path of a
real Node and Server with an in-memory transport: the upgrade request, then the masked
connect frame with a fresh HS256 token, for N connections that stay open (as in the load
generator's storm scenario). What it reports is the server's user-space cost per connect;
the storm scenario adds the kernel's (accept, two sends, reads, epoll) on top.
`--layers` also times the main layers (each timing wrapper adds ~0.3 us).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvloop

from centrifugo_fast.auth import jwt as jwt_module
from centrifugo_fast.auth.jwt import make_token
from centrifugo_fast.config import load_config
from centrifugo_fast.core import client as client_module
from centrifugo_fast.core.gctune import tune_for_serving
from centrifugo_fast.core.node import Node
from centrifugo_fast.transport import http as http_module, websocket as ws_module
from centrifugo_fast.transport.http import HttpConnection
from centrifugo_fast.transport.server import Server

SECRET = "connect-path-secret-0123456789-0123456789"


class MemoryTransport:
    """Just enough of an asyncio transport: writes are kept, nothing is sent."""

    __slots__ = ("protocol", "written", "closed")

    def __init__(self) -> None:
        self.protocol: Any = None
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _masked_text(payload: bytes) -> bytes:
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    n = len(payload)
    length = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return b"\x81" + length + key + masked


def _requests(n: int) -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(n):
        key = base64.b64encode(os.urandom(16)).decode()
        upgrade = (
            "GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: centrifuge-json\r\n\r\n"
        ).encode()
        token = make_token(SECRET, f"user{i}", 3600)
        connect = json.dumps({"id": 1, "connect": {"token": token}}).encode()
        out.append((upgrade, _masked_text(connect)))
    return out


class LayerTimes:
    """Wraps functions and methods to sum their wall time."""

    def __init__(self) -> None:
        self.totals: dict[str, list[float]] = {}

    def wrap(self, owner: Any, name: str, label: str, is_async: bool = False) -> None:
        """Replace `owner.name` with a timing wrapper."""
        original: Callable[..., Any] = getattr(owner, name)
        total = self.totals.setdefault(label, [0.0, 0.0])

        if is_async:

            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                result = await original(*args, **kwargs)
                total[0] += time.perf_counter() - start
                total[1] += 1
                return result

            setattr(owner, name, timed_async)
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            result = original(*args, **kwargs)
            total[0] += time.perf_counter() - start
            total[1] += 1
            return result

        setattr(owner, name, timed)

    def report(self) -> None:
        """Print the mean time of each wrapped layer."""
        for label, (seconds, calls) in self.totals.items():
            print(f"  {label:44s} {seconds / max(calls, 1) * 1e6:7.1f} us")


def _wrap_layers(times: LayerTimes) -> None:
    times.wrap(http_module.HttpConnection, "data_received", "HTTP request (parse + upgrade)")
    times.wrap(http_module.HttpConnection, "_on_upgrade", "  upgrade")
    times.wrap(http_module, "negotiate", "    handshake negotiate")
    times.wrap(ws_module.WebSocketConnection, "start", "    connection start (Client init)")
    times.wrap(ws_module.WebSocketConnection, "buffer_updated", "connect frame (parse + command)")
    times.wrap(client_module.Client, "_connect", "  Client._connect", is_async=True)
    times.wrap(
        jwt_module.TokenVerifier, "verify_connection_token", "    JWT verification", is_async=True
    )


async def _run(n: int, layers: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.json"
        path.write_text(
            json.dumps(
                {
                    "client": {"token": {"hmac_secret_key": SECRET}},
                    "http_api": {"key": "connect-path-api-key"},
                    "log": {"level": "error"},
                }
            )
        )
        config = load_config(path, environ={})[0]
    node = Node(config)
    await node.start()
    server = Server(node)
    tune_for_serving()  # as the server does before serving
    requests = _requests(n)
    times = LayerTimes()
    if layers:
        _wrap_layers(times)
    transports: list[MemoryTransport] = []
    started = time.perf_counter()
    for upgrade, frame in requests:
        transport = MemoryTransport()
        conn = HttpConnection(server.ctx)
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(upgrade)
        ws = transport.protocol
        buffer = ws.get_buffer(len(frame))
        buffer[: len(frame)] = frame
        ws.buffer_updated(len(frame))
        transports.append(transport)
    await asyncio.sleep(0)  # the replies are flushed at the end of the loop turn
    connected = time.perf_counter() - started
    replied = sum(1 for t in transports if any(b'"connect":{"client"' in w for w in t.written))
    if replied != n:
        raise SystemExit(f"only {replied} of {n} connects were answered")
    print(f"{n} connects, {connected / n * 1e6:.1f} us of Python per connect")
    if layers:
        times.report()
    for transport in transports:
        transport.protocol.connection_lost(None)
    node.timers.close()


def main() -> None:
    """Entry point."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.connect_path", description=__doc__)
    p.add_argument("--connections", type=int, default=15000)
    p.add_argument("--layers", action="store_true", help="also time the main layers")
    args = p.parse_args()
    uvloop.run(_run(args.connections, args.layers))


if __name__ == "__main__":
    main()
