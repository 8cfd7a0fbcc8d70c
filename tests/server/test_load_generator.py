"""The load generator (benchmarks/load) counts exactly what the server delivers.

Small, short runs against a real server: every scenario must run, and the fan-out counts must
match publications x subscribers, in both encodings and with both receive paths, or the
benchmark numbers it produces would be wrong.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.serverproc import API_KEY, ROOT, SECRET, ServerProcess, ci, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """A server with a quiet log (the generator's traffic would flood a debug log)."""
    yield from running_server({"log": {"level": "error"}})


def _compiled_receiver_built() -> bool:
    return importlib.util.find_spec("benchmarks.load._receiver") is not None


RECEIVERS = ["asyncio", "compiled"]


def _run(server: ServerProcess, *args: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.load",
        *args,
        "--url",
        server.ws_url,
        "--api",
        server.api_url,
        "--key",
        API_KEY,
        "--secret",
        SECRET,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def _receiver_args(receiver: str) -> list[str]:
    if receiver == "compiled" and not _compiled_receiver_built():
        if ci():
            pytest.fail("benchmarks/load/_receiver is not built (make build-receiver)")
        pytest.skip("compiled receiver not built")
    return ["--asyncio-receiver"] if receiver == "asyncio" else []


@pytest.mark.parametrize("receiver", RECEIVERS)
@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_fanout_counts_every_delivery(server: ServerProcess, receiver: str, encoding: str) -> None:
    """50 subscribers x 20 publications/s for 1 s: 1000 deliveries/s, none lost or invented."""
    args = ["fanout", "--subscribers", "50", "--steps", "1000", "--step-seconds", "2"]
    if encoding == "protobuf":
        args.append("--protobuf")
    result = _run(server, *args, *_receiver_args(receiver))
    assert result["receiver"] == receiver
    assert result["connections_lost"] == 0
    step = result["steps"][0]
    # 2 s windows at 20 publications/s: 40 publications x 50 subscribers, give or take one
    # publication crossing each edge of the window.
    assert 900 <= step["achieved"] <= 1100, step
    assert step["publish_errors"] == 0
    assert 0 < step["p50_ms"] <= step["p99_ms"] <= step["p999_ms"] < 1000


@pytest.mark.parametrize("receiver", RECEIVERS)
def test_channels_spreads_publications(server: ServerProcess, receiver: str) -> None:
    """200 channels x 1 subscriber at 400 publications/s: each delivered once."""
    args = ["channels", "--channels", "200", "--steps", "400", "--step-seconds", "2"]
    result = _run(server, *args, *_receiver_args(receiver))
    step = result["steps"][0]
    assert 360 <= step["achieved"] <= 440, step
    assert result["connections_lost"] == 0


def test_idle_reports_memory_and_cpu(server: ServerProcess) -> None:
    """The idle scenario finds the server by its port and keeps every connection alive."""
    result = _run(server, "idle", "--connections", "300", "--idle-seconds", "1")
    assert result["alive_after_window"] == 300
    assert result["rss_after_mb"] >= result["rss_before_mb"] > 0
    assert result["server_cpu_us_per_conn_s"] >= 0
    assert result["disconnects"] == {}


@pytest.mark.parametrize("receiver", RECEIVERS)
@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_storm_connects_with_jwt(server: ServerProcess, receiver: str, encoding: str) -> None:
    """Every storm connection authenticates (a refused one would fail the run)."""
    args = ["storm", "--connections", "300", "--rounds", "1", *_receiver_args(receiver)]
    if encoding == "protobuf":
        args.append("--protobuf")
    result = _run(server, *args)
    assert result["connections"] == 300
    assert result["receiver"] == receiver
    assert result["connects_per_s"] > 0


@pytest.mark.parametrize("receiver", RECEIVERS)
def test_refused_token_fails_the_run(server: ServerProcess, receiver: str) -> None:
    """A wrong secret is reported as failed connections, not as a fast benchmark."""
    cmd = [sys.executable, "-m", "benchmarks.load", "storm", "--connections", "5"]
    cmd += _receiver_args(receiver)
    cmd += ["--rounds", "1", "--url", server.ws_url, "--api", server.api_url]
    cmd += ["--key", API_KEY, "--secret", "wrong-secret-wrong-secret-wrong-secret"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert done.returncode != 0
    assert b"5 of 5 connections failed" in done.stderr


def test_suite_runs_repeats_and_summarises(tmp_path: Any) -> None:
    """`make bench-load`'s driver: fresh pinned servers, repeats, JSON lines, plots, summary."""
    if os.environ.get("CENTRIFUGO_FAST_NO_EXTENSIONS") == "1":
        # The suite starts its own servers with the compiled twins whatever this pass uses.
        pytest.skip("twin-independent: runs in the compiled pass")
    if not _compiled_receiver_built():
        if ci():
            pytest.fail("the compiled receive loop is not built (make build-receiver)")
        pytest.skip("the compiled receive loop is not built")
    out = tmp_path / "load"
    cmd = [sys.executable, "-m", "benchmarks.load.suite", "--quick", "--repeat", "2"]
    cmd += ["--only", "fanout,idle,fanout-redis", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    records = [json.loads(line) for line in (out / "ours.jsonl").read_text().splitlines()]
    assert sorted((r["scenario"], r["run"]) for r in records) == [
        (scenario, run) for scenario in ("fanout", "fanout-redis", "idle") for run in (1, 2)
    ]
    for record in records:
        if record["scenario"] != "idle":
            assert record["max_deliveries_per_s"] > 0 and record["connections_lost"] == 0
    assert all(r["command"].startswith("python -m benchmarks.load ") for r in records)
    assert (out / "fanout.png").stat().st_size > 0
    assert (out / "fanout-redis.png").stat().st_size > 0
    summary = (out / "summary.md").read_text()
    assert "median of 2 runs" in summary
    assert "(a) fan-out, max deliveries/s" in summary
    # A partial re-run replaces its scenario's runs and keeps the others'.
    cmd = [sys.executable, "-m", "benchmarks.load.suite", "--quick", "--only", "idle"]
    done = subprocess.run([*cmd, "--out", str(out)], cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0
    records = [json.loads(line) for line in (out / "ours.jsonl").read_text().splitlines()]
    assert sorted((r["scenario"], r["run"]) for r in records) == [
        ("fanout", 1), ("fanout", 2), ("fanout-redis", 1), ("fanout-redis", 2), ("idle", 1)
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "ws://192.0.2.1:8000/connection/websocket"], "loopback targets only"),
        (["--connections", "1000000"], "--connections must be in (0, 50000]"),
        (["--idle-seconds", "0"], "--idle-seconds must be in"),
        (["--steps", "1000,nan"], "a step is an offered rate"),
    ],
)
def test_generator_refuses_remote_targets_and_unbounded_runs(args: list[str], message: str) -> None:
    """Loopback only and bounded in count and time, before any connection is made."""
    cmd = [sys.executable, "-m", "benchmarks.load", "idle"]
    cmd += ["--url", "ws://127.0.0.1:9/connection/websocket", "--api", "http://127.0.0.1:9/api"]
    cmd += ["--key", "k", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert done.returncode == 2
    assert message in done.stderr.decode()
