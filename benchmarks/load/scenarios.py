"""The load scenarios: fan-out, idle, many channels, connect storm (Protobuf and Redis are
variants chosen by options). Each returns a JSON-ready dict."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt

from . import procstat
from .apiclient import ApiClient, publish_paced
from .counting import Counter, compiled_loop, counter_for
from .wsclient import (
    ProtocolFailure,
    Tally,
    Target,
    WsClient,
    connect_frame,
    open_client,
    upgrade_request,
)

#: Stop stepping once p99 passes this (the issue's definition of "too slow").
P99_LIMIT_MS = 100.0
#: A step whose achieved rate is below this share of the offered rate means saturation.
PLATEAU = 0.9


@dataclass(slots=True)
class Options:
    """Everything a scenario needs, from the command line."""

    urls: list[str]
    api: str
    key: str
    secret: str
    protobuf: bool = False
    size: int = 100
    server_pids: list[int] = field(default_factory=list)
    subscribers: int = 1000
    channels: int = 10000
    connections: int = 10000
    steps: list[int] = field(default_factory=list)
    step_seconds: float = 4.0
    warmup_seconds: float = 1.0
    idle_seconds: float = 30.0
    storm_rounds: int = 3
    concurrency: int = 200
    compiled_receiver: bool = True

    def targets(self) -> list[Target]:
        """One Target per server URL; clients are spread across them round-robin."""
        return [Target.parse(url, self.protobuf) for url in self.urls]


def _token(secret: str, user: str) -> str:
    if not secret:
        return ""
    return jwt.encode({"sub": user, "exp": int(time.time()) + 3600}, secret, algorithm="HS256")


async def _connect_many(
    opts: Options, tally: Tally, count: int, channel: Callable[[int], str | None]
) -> tuple[list[WsClient], float]:
    """Connect (and subscribe) `count` clients with bounded concurrency; (clients, seconds)."""
    targets = opts.targets()
    tokens = [_token(opts.secret, f"user{i}") for i in range(count)]
    gate = asyncio.Semaphore(opts.concurrency)
    clients: list[WsClient] = []
    failures: list[str] = []

    async def one(i: int) -> None:
        async with gate:
            try:
                client = await open_client(targets[i % len(targets)], tally, tokens[i])
                ch = channel(i)
                if ch is not None:
                    await client.subscribe(ch)
            except (OSError, ProtocolFailure, TimeoutError) as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                return
            clients.append(client)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    seconds = time.perf_counter() - start
    if failures:
        for client in clients:
            client.abort()
        raise RuntimeError(f"{len(failures)} of {count} connections failed, first: {failures[0]}")
    return clients, seconds


async def _drain(counter: Counter, quiet: float = 0.3, limit: float = 15.0) -> float:
    """Wait until deliveries stop arriving; return how long that took."""
    start = time.monotonic()
    last = counter.delivered()
    while time.monotonic() - start < limit:
        await asyncio.sleep(quiet)
        if counter.delivered() == last:
            break
        last = counter.delivered()
    return time.monotonic() - start


async def _step(
    opts: Options,
    api: ApiClient,
    counter: Counter,
    offered: int,
    fanout: int,
    pick: Callable[[int], str],
) -> dict[str, Any]:
    """Offer `offered` deliveries/s for one step and measure what arrives."""
    rate = offered / fanout
    cpu = procstat.CpuWindow(opts.server_pids[0] if opts.server_pids else None)
    publishing = asyncio.create_task(
        publish_paced(api, rate, opts.warmup_seconds + opts.step_seconds, pick, opts.size)
    )
    await asyncio.sleep(opts.warmup_seconds)
    counter.start_window()
    before = counter.delivered()
    cpu.start()
    await asyncio.sleep(opts.step_seconds)
    delivered = counter.delivered() - before
    usage = cpu.stop()
    latency = counter.stop_window()
    paced = await publishing
    drain = await _drain(counter)
    achieved = delivered / usage.seconds
    return {
        "offered": offered,
        "achieved": round(achieved),
        "publishes_per_s": round(rate, 1),
        **{k: round(v, 3) for k, v in latency.items()},
        "server_cpu": _round(usage.server_cpu),
        "generator_cpu": _round(usage.generator_cpu),
        "publish_errors": paced.errors,
        "drain_s": round(drain, 2),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def _stepped(
    opts: Options,
    clients: list[WsClient],
    tally: Tally,
    fanout: int,
    pick: Callable[[int], str],
    default: list[int],
) -> dict[str, Any]:
    """Step the offered rate up until p99 passes the limit or deliveries plateau."""
    counter = await counter_for(clients, tally, opts.protobuf, opts.compiled_receiver)
    api = ApiClient(opts.api, opts.key)
    steps: list[dict[str, Any]] = []
    try:
        for offered in opts.steps or default:
            step = await _step(opts, api, counter, offered, fanout, pick)
            steps.append(step)
            print(_progress(step), flush=True, file=sys.stderr)
            if step["p99_ms"] > P99_LIMIT_MS or step["achieved"] < PLATEAU * offered:
                break
    finally:
        api.close()
        counter.close()
    best = max(steps, key=lambda s: s["achieved"])
    result: dict[str, Any] = {
        "max_deliveries_per_s": best["achieved"],
        "at_max": {k: best[k] for k in ("offered", "p50_ms", "p99_ms", "p999_ms", "server_cpu")},
        "generator_cpu_max": max(s["generator_cpu"] or 0 for s in steps),
        "receiver": counter.kind,
        "connections_lost": counter.lost(),
        "steps": steps,
    }
    at_100k = [s for s in steps if s["offered"] == 100_000]
    if at_100k:
        result["p99_ms_at_100k"] = at_100k[0]["p99_ms"]
    return result


def _progress(step: dict[str, Any]) -> str:
    return (
        f"  offered {step['offered']:>8}/s  achieved {step['achieved']:>8}/s  "
        f"p50 {step['p50_ms']:.2f} ms  p99 {step['p99_ms']:.2f} ms  "
        f"server cpu {step['server_cpu']}  generator cpu {step['generator_cpu']}"
    )


FANOUT_STEPS = [10_000, 25_000, 50_000, 75_000, 100_000, 125_000, 150_000, 200_000, 250_000]
FANOUT_STEPS += [300_000, 400_000, 500_000, 700_000, 1_000_000]
CHANNELS_STEPS = [5_000, 10_000, 20_000, 30_000, 40_000, 60_000, 80_000, 100_000, 150_000]


async def fanout(opts: Options) -> dict[str, Any]:
    """(a) 1 channel x N subscribers; (e) with --protobuf; (f) with several --url (Redis)."""
    tally = Tally()
    clients, _ = await _connect_many(opts, tally, opts.subscribers, lambda i: "bench")
    try:
        result = await _stepped(
            opts, clients, tally, opts.subscribers, lambda i: "bench", FANOUT_STEPS
        )
    finally:
        for client in clients:
            client.abort()
    result["subscribers"] = opts.subscribers
    return result


async def channels(opts: Options) -> dict[str, Any]:
    """(c) N channels x 1 subscriber, publications spread over the channels."""
    tally = Tally()
    n = opts.channels
    clients, _ = await _connect_many(opts, tally, n, lambda i: f"ch{i}")
    # A stride coprime with n visits every channel once per n publications, in scattered order.
    stride = 7919 if n % 7919 else 7907
    try:
        result = await _stepped(
            opts, clients, tally, 1, lambda i: f"ch{(i * stride) % n}", CHANNELS_STEPS
        )
    finally:
        for client in clients:
            client.abort()
    result["channels"] = n
    return result


async def idle(opts: Options) -> dict[str, Any]:
    """(b) N connected, subscribed, idle clients: server RSS and CPU per connection."""
    if not opts.server_pids:
        raise RuntimeError("idle needs the server pid (found from the URL's port, or --server-pid)")
    pids = opts.server_pids
    rss_before = sum(procstat.rss_bytes(pid) for pid in pids)
    tally = Tally()
    n = opts.connections
    clients, connect_s = await _connect_many(opts, tally, n, lambda i: f"idle{i}")
    try:
        await asyncio.sleep(5.0)
        rss_after = sum(procstat.rss_bytes(pid) for pid in pids)
        cpu_before = sum(procstat.cpu_seconds(pid) for pid in pids)
        pings_before = tally.pings
        window = procstat.CpuWindow(None)
        window.start()
        await asyncio.sleep(opts.idle_seconds)
        usage = window.stop()
        cpu = sum(procstat.cpu_seconds(pid) for pid in pids) - cpu_before
        alive = sum(1 for c in clients if not c.closed)
    finally:
        for client in clients:
            client.abort()
    seconds = usage.seconds or 1.0
    return {
        "connections": n,
        "alive_after_window": alive,
        "connect_seconds": round(connect_s, 2),
        "rss_before_mb": round(rss_before / 2**20, 1),
        "rss_after_mb": round(rss_after / 2**20, 1),
        "rss_per_connection_kb": round((rss_after - rss_before) / n / 1024, 2),
        "idle_window_s": round(seconds, 1),
        "server_cpu_us_per_conn_s": round(cpu * 1e6 / (n * seconds), 3),
        "pings_answered": tally.pings - pings_before,
        "generator_cpu": _round(usage.generator_cpu),
        "disconnects": dict(tally.disconnects),
    }


async def storm(opts: Options) -> dict[str, Any]:
    """(d) connect storm: N JWT-authenticated connects as fast as the server accepts them.

    With the compiled loop a connection costs the generator two writes (upgrade, then the
    connect command once 101 arrived) and two reads, in C: its cost is mostly the kernel's.
    """
    rounds = []
    pid = opts.server_pids[0] if opts.server_pids else None
    for _ in range(opts.storm_rounds):
        cpu = procstat.CpuWindow(pid)
        if opts.compiled_receiver:
            seconds, usage = _compiled_storm(opts, cpu)
        else:
            tally = Tally()
            cpu.start()
            clients, seconds = await _connect_many(opts, tally, opts.connections, lambda i: None)
            usage = cpu.stop()
            for client in clients:
                client.abort()
        rounds.append(
            {
                "connects_per_s": round(opts.connections / seconds),
                "server_cpu": _round(usage.server_cpu),
                "generator_cpu": _round(usage.generator_cpu),
            }
        )
        print(f"  {rounds[-1]}", flush=True, file=sys.stderr)
        await asyncio.sleep(2.0)
    return {
        "connections": opts.connections,
        "concurrency": opts.concurrency,
        "connects_per_s": statistics.median(int(r["connects_per_s"] or 0) for r in rounds),
        "receiver": "compiled" if opts.compiled_receiver else "asyncio",
        "rounds": rounds,
    }


def _compiled_storm(opts: Options, cpu: procstat.CpuWindow) -> tuple[float, procstat.Usage]:
    target = opts.targets()[0]
    n = opts.connections
    upgrades = [upgrade_request(target) for _ in range(n)]
    frames = [connect_frame(target, _token(opts.secret, f"user{i}")) for i in range(n)]
    loop = compiled_loop()
    cpu.start()
    connected, failed, seconds, fds = loop.storm(
        target.host, target.port, upgrades, frames, opts.concurrency, target.protobuf, 60.0
    )
    usage = cpu.stop()
    loop.close_all(fds)
    if failed:
        raise RuntimeError(f"{failed} of {opts.connections} connections failed")
    return float(seconds), usage


SCENARIOS = {"fanout": fanout, "channels": channels, "idle": idle, "storm": storm}
