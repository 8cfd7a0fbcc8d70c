"""Redis engine throughput: API publishes into a Redis-backed node, and a 2-node fan-out.

Not a pytest-benchmark module: run it as a script (it starts redis-server and server
processes on free loopback ports, pins them with sched_setaffinity, and stops by itself):

    .venv/bin/python benchmarks/bench_redis.py [--seconds 5]

Prints publishes/s through `POST /api/publish` (memory engine for reference, Redis without
and with history), deliveries/s of a 2-node fan-out (publish on node A, subscribers on node
B), and `redis-benchmark` PUBLISH on the same machine for the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from centrifugo_fast.auth.jwt import make_token  # noqa: E402
from tests.redis.redisproc import RedisProcess  # noqa: E402
from tests.serverproc import API_KEY, BASE_CONFIG, SECRET, ServerProcess, merge  # noqa: E402

CPUS = sorted(os.sched_getaffinity(0))
SERVER_CPU = {CPUS[0]}
OTHER_CPU = {CPUS[-1]}


def _config(engine: dict[str, Any]) -> dict[str, Any]:
    extra = {
        "log": {"level": "error"},
        "channel": {
            "namespaces": [
                {"name": "hist", "history_size": 100, "history_ttl": "300s"},
                {"name": "fan", "allow_subscribe_for_client": True},
            ]
        },
        "engine": engine,
    }
    return merge(BASE_CONFIG, extra)


def _start(config: dict[str, Any], cpus: set[int]) -> ServerProcess:
    server = ServerProcess(config).start()
    assert server.proc is not None
    os.sched_setaffinity(server.proc.pid, cpus)
    return server


# ---- HTTP load ----


async def _publisher(
    port: int, channel: str, deadline: float, counter: list[int], limit: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"channel": channel, "data": {"v": "x" * 40}}).encode()
    request = (
        b"POST /api/publish HTTP/1.1\r\nHost: b\r\nX-API-Key: "
        + API_KEY.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )
    try:
        while time.monotonic() < deadline and counter[0] < limit:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"(?i)content-length: *(\d+)", head)
            assert match is not None and head.startswith(b"HTTP/1.1 200"), head
            answer = await reader.readexactly(int(match.group(1)))
            assert b"error" not in answer, answer
            counter[0] += 1
    finally:
        writer.close()


async def _publish_load(
    port: int, channel: str, seconds: float, conns: int = 32, limit: int = 10**9
) -> float:
    counter = [0]
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(
        *(_publisher(port, channel, deadline, counter, limit) for _ in range(conns))
    )
    return counter[0] / (time.monotonic() - started)


# ---- WebSocket subscribers ----


class _Subscriber(asyncio.Protocol):
    """A WebSocket subscriber that only counts publications (cheap: no frame parsing)."""

    def __init__(self, channel: str, counter: list[int], ready: asyncio.Event) -> None:
        self.channel = channel
        self.counter = counter
        self.ready = ready
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        token = make_token(SECRET, "bench", 3600)
        commands = [
            {"id": 1, "connect": {"token": token}},
            {"id": 2, "subscribe": {"channel": self.channel}},
        ]
        payload = "\n".join(json.dumps(c) for c in commands).encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        frame = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big") + mask + masked
        handshake = (
            "GET /connection/websocket HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        cast(asyncio.Transport, transport).write(handshake + frame)

    def data_received(self, data: bytes) -> None:
        data = self.tail + data
        self.tail = data[-5:]
        self.counter[0] += data[:-5].count(b'"pub"')
        if not self.ready.is_set() and b'"subscribe"' in data:
            self.ready.set()


async def _fanout(
    publish_port: int, subscribe_port: int, subscribers: int, seconds: float
) -> tuple[float, float]:
    counter = [0]
    channel = "fan:bench"
    loop = asyncio.get_running_loop()
    transports = []
    for _ in range(subscribers):
        ready = asyncio.Event()
        transport, _ = await loop.create_connection(
            lambda ready=ready: _Subscriber(channel, counter, ready),  # type: ignore[misc]
            "127.0.0.1",
            subscribe_port,
        )
        transports.append(transport)
        await asyncio.wait_for(ready.wait(), 10)
    await asyncio.sleep(0.5)
    started = time.monotonic()
    publish_rate = await _publish_load(publish_port, channel, seconds, conns=8)
    await asyncio.sleep(1.0)  # let in-flight deliveries land
    delivered = counter[0] / (time.monotonic() - started - 1.0)
    for transport in transports:
        transport.close()
    return publish_rate, delivered


def _redis_benchmark(port: int, pipeline: int) -> float:
    """PUBLISH of a 60-byte payload with redis-benchmark (Redis 7.0's `-t` has no publish
    test, so the command is given explicitly)."""
    tool = shutil.which("redis-benchmark")
    if tool is None:
        return 0.0
    out = subprocess.run(
        ["taskset", "-c", str(min(SERVER_CPU)), tool, "-p", str(port), "-q"]
        + ["-n", "300000", "-c", "32", "-P", str(pipeline)]
        + ["publish", "bench.client.plain", "x" * 60],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"([\d.]+) requests per second", out.replace("\r", "\n"))
    return float(match.group(1)) if match else 0.0


def _in_process(address: str, seconds: float) -> dict[str, float]:
    """RedisBroker.publish rates with 32 concurrent publishers in this process (no HTTP)."""
    from centrifugo_fast.config.loader import load_config
    from centrifugo_fast.engine.base import PublishOptions
    from centrifugo_fast.engine.redis import create_redis_engine

    class Handler:
        id = "bench"

        def handle_publication(self, channel: str, pub: Any) -> None: ...

        def handle_join(self, channel: str, info: Any) -> None: ...

        def handle_leave(self, channel: str, info: Any) -> None: ...

        def handle_control(self, data: bytes) -> None: ...

        def subscribed_channels(self) -> list[str]:
            return []

    overrides = {"engine.type": "redis", "engine.redis.address": [address]}
    config, _ = load_config(None, overrides={**overrides, "engine.redis.prefix": "inproc"})
    rates: dict[str, float] = {}

    async def run() -> None:
        broker, _ = create_redis_engine(config, Handler(), asyncio.get_running_loop())
        await broker.start()
        data = b'{"v":"' + b"x" * 40 + b'"}'
        cases = {
            "broker.publish in-process": PublishOptions(),
            "broker.publish with history in-process": PublishOptions(
                history_size=100, history_ttl=300
            ),
        }
        for name, opts in cases.items():
            count = [0]
            deadline = time.monotonic() + seconds

            async def worker(
                opts: PublishOptions = opts, count: list[int] = count, deadline: float = deadline
            ) -> None:
                while time.monotonic() < deadline:
                    await broker.publish("inproc", data, opts)
                    count[0] += 1

            started = time.monotonic()
            await asyncio.gather(*(worker() for _ in range(32)))
            rates[name] = count[0] / (time.monotonic() - started)
        await broker.close()

    os.sched_setaffinity(0, SERVER_CPU)
    try:
        asyncio.run(run())
    finally:
        os.sched_setaffinity(0, OTHER_CPU)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--subscribers", type=int, default=100)
    args = parser.parse_args()
    os.sched_setaffinity(0, OTHER_CPU)  # the load generator shares a CPU with Redis
    print(f"CPUs {CPUS}: server(s) on {sorted(SERVER_CPU)}, redis + load on {sorted(OTHER_CPU)}")
    redis = RedisProcess(cpus=OTHER_CPU).start()
    results: dict[str, float] = {}
    try:
        memory = _start(_config({"type": "memory"}), SERVER_CPU)
        try:
            results["api publish, memory engine"] = asyncio.run(
                _publish_load(memory.port, "plain", args.seconds)
            )
        finally:
            memory.close()
        engine = {"type": "redis", "redis": {"address": [redis.address], "prefix": "bench"}}
        node = _start(_config(engine), SERVER_CPU)
        try:
            results["api publish, redis engine"] = asyncio.run(
                _publish_load(node.port, "plain", args.seconds)
            )
            results["api publish with history, redis engine"] = asyncio.run(
                _publish_load(node.port, "hist:x", args.seconds)
            )
        finally:
            node.close()
        # Node B (the fan-out) gets a CPU of its own; node A shares with Redis and the load.
        node_a = _start(_config(engine), OTHER_CPU)
        node_b = _start(_config(engine), SERVER_CPU)
        try:
            rate, delivered = asyncio.run(
                _fanout(node_a.port, node_b.port, args.subscribers, args.seconds)
            )
            results["fan-out: publishes/s into node A"] = rate
            results[f"fan-out: deliveries/s on node B ({args.subscribers} subscribers)"] = delivered
        finally:
            node_a.close()
            node_b.close()
        results.update(_in_process(redis.address, args.seconds))
        results["redis-benchmark PUBLISH (-c 32)"] = _redis_benchmark(redis.port, 1)
        results["redis-benchmark PUBLISH (-c 32 -P 16)"] = _redis_benchmark(redis.port, 16)
    finally:
        redis.close()
    width = max(len(k) for k in results)
    for name, value in results.items():
        print(f"{name:<{width}}  {value:>12,.0f} /s")
    base = results.get("redis-benchmark PUBLISH (-c 32)", 0.0)
    if base:
        ratio = results["api publish, redis engine"] / base
        print(f"api publish (redis engine) / redis-benchmark publish = {ratio:.2f}")


if __name__ == "__main__":
    main()
