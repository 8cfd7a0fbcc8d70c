"""Command line: run one scenario and print its result as one JSON line."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from . import procstat
from .scenarios import SCENARIOS, Options


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__)
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument(
        "--url",
        action="append",
        required=True,
        help="ws://HOST:PORT/connection/websocket; repeat to spread clients over several nodes",
    )
    p.add_argument("--api", required=True, help="http://HOST:PORT/api of the node to publish to")
    p.add_argument("--key", required=True, help="http_api.key")
    p.add_argument("--secret", default="", help="HMAC secret to sign connection JWTs (HS256)")
    p.add_argument("--protobuf", action="store_true", help="speak centrifuge-protobuf")
    p.add_argument("--size", type=int, default=100, help="publication payload size in bytes")
    p.add_argument("--subscribers", type=int, default=1000, help="fanout: subscribers")
    p.add_argument("--channels", type=int, default=10000, help="channels: channel count")
    p.add_argument("--connections", type=int, default=10000, help="idle/storm: connections")
    p.add_argument("--concurrency", type=int, default=200, help="connects in flight at most")
    p.add_argument(
        "--steps",
        default="",
        help="comma-separated offered deliveries/s (default: the scenario's ladder)",
    )
    p.add_argument("--step-seconds", type=float, default=4.0)
    p.add_argument("--idle-seconds", type=float, default=30.0)
    p.add_argument("--rounds", type=int, default=3, help="storm: repetitions")
    p.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        help="pid(s) to measure; default: whoever listens on each --url port",
    )
    p.add_argument(
        "--asyncio-receiver",
        action="store_true",
        help="count deliveries in the asyncio clients instead of the compiled receive loop",
    )
    p.add_argument("--label", default="", help="free text stored with the result")
    p.add_argument("--plot", default="", help="write a PNG of a stepped scenario here")
    p.add_argument("--out", default="", help="also append the JSON line to this file")
    return p


#: What one run may ask for at most: a benchmark of this machine, not a stress tool.
LIMITS = {
    "subscribers": 50_000,
    "channels": 50_000,
    "connections": 50_000,
    "concurrency": 2_000,
    "size": 65_536,
    "step_seconds": 60.0,
    "idle_seconds": 300.0,
    "rounds": 10,
}
MAX_STEPS = 20
MAX_OFFERED = 5_000_000


def _loopback_only(p: argparse.ArgumentParser, url: str) -> None:
    host = urlsplit(url).hostname
    if not host:
        p.error(f"no host in {url!r}")
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        p.error(f"cannot resolve {host!r}: {exc}")
    for info in infos:
        address = str(info[4][0]).split("%", 1)[0]
        if not ipaddress.ip_address(address).is_loopback:
            p.error(f"loopback targets only: {host} is {address}")


def _check_bounds(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse non-loopback targets and runs beyond LIMITS (argparse-style errors)."""
    for url in [*args.url, args.api]:
        _loopback_only(p, url)
    for name, limit in LIMITS.items():
        value = getattr(args, name)
        if not 0 < value <= limit:
            p.error(f"--{name.replace('_', '-')} must be in (0, {limit}], not {value}")
    steps = [s for s in args.steps.split(",") if s]
    if len(steps) > MAX_STEPS:
        p.error(f"at most {MAX_STEPS} steps")
    for step in steps:
        if not step.isdigit() or not 0 < int(step) <= MAX_OFFERED:
            p.error(f"a step is an offered rate in (0, {MAX_OFFERED}] deliveries/s, not {step!r}")


def _server_pids(urls: list[str]) -> list[int]:
    pids = []
    for url in urls:
        port = urlsplit(url).port
        pid = procstat.pid_listening_on(port) if port else None
        if pid is not None and pid not in pids:
            pids.append(pid)
    return pids


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = _parser()
    args = parser.parse_args(argv)
    _check_bounds(parser, args)
    procstat.raise_fd_limit()
    opts = Options(
        urls=args.url,
        api=args.api,
        key=args.key,
        secret=args.secret,
        protobuf=args.protobuf,
        size=args.size,
        server_pids=args.server_pid or _server_pids(args.url),
        subscribers=args.subscribers,
        channels=args.channels,
        connections=args.connections,
        steps=[int(s) for s in args.steps.split(",") if s],
        step_seconds=args.step_seconds,
        idle_seconds=args.idle_seconds,
        storm_rounds=args.rounds,
        concurrency=args.concurrency,
        compiled_receiver=not args.asyncio_receiver,
    )
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    started = time.time()
    result = runner(SCENARIOS[args.scenario](opts))
    record = {
        "scenario": args.scenario + ("-protobuf" if args.protobuf else ""),
        "label": args.label,
        "nodes": len(args.url),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        **result,
    }
    line = json.dumps(record, separators=(",", ":"))
    print(line, flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")
    if args.plot and "steps" in result:
        from .plot import plot_steps

        plot_steps([record], args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
