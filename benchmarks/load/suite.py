"""Run the load scenarios against servers this script starts, pinned to one core.

    python -m benchmarks.load.suite [--target ours] [--target centrifugo=/path/to/centrifugo]
                                    [--only fanout,idle] [--out benchmarks/results/load]
                                    [--repeat 3]

Each scenario gets a freshly started server (so RSS and CPU belong to that scenario alone) on
CPU 0, and the generator runs as ``python -m benchmarks.load`` on CPU 1. Results are written
as one JSON line per scenario to ``<out>/<target>.jsonl``, plots to ``<out>/*.png`` and a
summary table (with ours/Centrifugo ratios when both ran) to ``<out>/summary.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .plot import plot_steps
from .procstat import raise_fd_limit
from .summary import write_summary

SERVER_CPU = "0"
GENERATOR_CPU = "1"
SECRET = "load-test-secret-0123456789-0123456789"
API_KEY = "load-test-api-key"
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Scenario:
    """One generator run: its name in results, the generator arguments, how many nodes."""

    name: str
    args: tuple[str, ...]
    nodes: int = 1
    redis: bool = False


SCENARIOS = [
    Scenario("fanout", ("fanout",)),
    Scenario("fanout-protobuf", ("fanout", "--protobuf")),
    Scenario("idle", ("idle", "--connections", "10000", "--idle-seconds", "30")),
    Scenario("channels", ("channels", "--channels", "10000")),
    Scenario("storm", ("storm", "--connections", "5000", "--rounds", "3")),
    Scenario("fanout-redis", ("fanout",), nodes=2, redis=True),
]


#: --quick: tiny sizes for checking the suite itself; the numbers mean nothing.
QUICK_ARGS = (
    "--subscribers", "100", "--channels", "300", "--connections", "300", "--idle-seconds", "2",
    "--rounds", "1", "--steps", "1000,2000", "--step-seconds", "1",
)  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def _config(port: int, redis_port: int | None) -> dict[str, Any]:
    # The same v6 JSON config works for Centrifugo and for us.
    config: dict[str, Any] = {
        "http_server": {"port": port},
        "client": {"token": {"hmac_secret_key": SECRET}},
        "http_api": {"key": API_KEY},
        "channel": {"without_namespace": {"allow_subscribe_for_client": True}},
        "log": {"level": "error"},
    }
    if redis_port is not None:
        config["engine"] = {
            "type": "redis",
            "redis": {"address": [f"redis://127.0.0.1:{redis_port}"]},
        }
    return config


@dataclass(frozen=True)
class Target:
    """A server implementation to start."""

    name: str
    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, spec: str) -> Target:
        """`ours`, `ours-pure`, or `centrifugo=/path/to/binary`."""
        if spec == "ours":
            env = (("CENTRIFUGO_FAST_REQUIRE_EXTENSIONS", "1"),)
            return cls("ours", (sys.executable, "-m", "centrifugo_fast"), env)
        if spec == "ours-pure":
            env = (("CENTRIFUGO_FAST_NO_EXTENSIONS", "1"),)
            return cls("ours-pure", (sys.executable, "-m", "centrifugo_fast"), env)
        name, _, path = spec.partition("=")
        if name == "centrifugo" and path:
            if not os.access(path, os.X_OK):
                raise SystemExit(f"not an executable: {path}")
            return cls("centrifugo", (path,))
        raise SystemExit(f"unknown target {spec!r}: ours, ours-pure or centrifugo=PATH")


@contextlib.contextmanager
def _redis() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (make system-deps)")
    port = _free_port()
    proc = subprocess.Popen(
        [
            "taskset",
            "-c",
            SERVER_CPU,
            binary,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        _wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.contextmanager
def _servers(target: Target, scenario: Scenario, workdir: Path) -> Iterator[list[int]]:
    with contextlib.ExitStack() as stack:
        redis_port = stack.enter_context(_redis()) if scenario.redis else None
        ports = []
        procs = []
        for i in range(scenario.nodes):
            port = _free_port()
            path = workdir / f"{target.name}-{i}.json"
            path.write_text(json.dumps(_config(port, redis_port)))
            env = {**os.environ, **dict(target.env), "PYTHONPATH": str(ROOT)}
            log = (workdir / f"{target.name}-{scenario.name}-{i}.log").open("wb")
            stack.callback(log.close)
            proc = subprocess.Popen(
                ["taskset", "-c", SERVER_CPU, *target.command, "--config", str(path)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=workdir,
            )
            procs.append(proc)
            _wait_port(port, proc)
            ports.append(port)
        try:
            yield ports
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def run_scenario(
    target: Target, scenario: Scenario, workdir: Path, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Start fresh server(s), run the generator pinned, return its JSON result."""
    with _servers(target, scenario, workdir) as ports:
        time.sleep(1.0)  # let the server settle before measuring its baseline
        urls = [a for p in ports for a in ("--url", f"ws://127.0.0.1:{p}/connection/websocket")]
        cmd = [
            "taskset", "-c", GENERATOR_CPU, sys.executable, "-m", "benchmarks.load",
            *scenario.args, *urls, "--api", f"http://127.0.0.1:{ports[0]}/api",
            "--key", API_KEY, "--secret", SECRET, "--label", target.name, *extra,
        ]  # fmt: skip
        print(f"[{target.name}] {scenario.name}", flush=True)
        done = subprocess.run(
            cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE
        )
        if done.returncode != 0:
            raise RuntimeError(f"{scenario.name} on {target.name} failed ({done.returncode})")
        record: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
        record["scenario"] = scenario.name
        shown = " ".join(["python", *cmd[4:]])
        for i, port in enumerate(ports):
            shown = shown.replace(f":{port}/", f":PORT{i or ''}/")
        record["command"] = shown
        return record


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.load.suite", description=__doc__)
    p.add_argument("--target", action="append", default=[], help="ours | centrifugo=PATH")
    p.add_argument("--only", default="", help="comma-separated scenario names")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "load"))
    p.add_argument("--quick", action="store_true", help="tiny sizes, to check the suite works")
    p.add_argument(
        "--repeat", type=int, default=1, help="run everything N times (the summary takes medians)"
    )
    args = p.parse_args(argv)
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("the suite needs two CPUs: the server on CPU 0, the generator on CPU 1")
    targets = [Target.parse(t) for t in args.target or ["ours"]]
    # The servers started here inherit the limit: 10 000 clients need as many descriptors.
    raise_fd_limit()
    wanted = {s for s in args.only.split(",") if s}
    unknown = wanted - {s.name for s in SCENARIOS}
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    scenarios = [s for s in SCENARIOS if not wanted or s.name in wanted]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, list[dict[str, Any]]] = {t.name: [] for t in targets}
    extra = QUICK_ARGS if args.quick else ()
    with tempfile.TemporaryDirectory(prefix="load-suite-") as tmp:
        # Repeats go round every target in turn, so a noisy minute on the shared machine
        # hits one run of each rather than every run of one.
        for run in range(1, args.repeat + 1):
            for target in targets:
                for scenario in scenarios:
                    record = run_scenario(target, scenario, Path(tmp), extra)
                    record["run"] = run
                    results[target.name].append(record)
    ran = {s.name for s in scenarios}
    for name, records in results.items():
        path = out / f"{name}.jsonl"
        # A partial run (--only) replaces those scenarios and keeps the others' results.
        kept = [r for r in _read_jsonl(path) if r.get("scenario") not in ran]
        with path.open("w") as f:
            for record in kept + records:
                f.write(json.dumps(record, separators=(",", ":")) + "\n")
    _plots(out)
    write_summary(out)
    print(f"done in {time.monotonic() - started:.0f} s; results in {out}", flush=True)
    return 0


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def _plots(out: Path) -> None:
    """One PNG per stepped scenario, every target overlaid."""
    records = []
    for path in sorted(out.glob("*.jsonl")):
        records += [json.loads(line) for line in path.read_text().splitlines() if line]
    families: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if "steps" not in record:
            continue
        families.setdefault(record["scenario"], []).append(record)
    for family, group in families.items():
        plot_steps(group, str(out / f"{family}.png"))


if __name__ == "__main__":
    sys.exit(main())
