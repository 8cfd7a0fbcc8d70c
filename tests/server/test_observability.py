"""Health, Prometheus metrics, logs, pid file and the shutdown watchdog of a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import API_KEY, ROOT, SECRET, ServerProcess, free_port
from tests.wsclient import RawWebSocket

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def http(url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    """(status, headers, body) of one request; HTTP errors are answers too."""
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def scrape(port: int, path: str = "/metrics") -> Samples:
    """Every sample of the page, parsed by prometheus_client: {(name, labels): value}."""
    status, headers, body = http(f"http://127.0.0.1:{port}{path}")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample (0 when absent). The parser names counter samples `<family>_total`
    (OpenMetrics style) whatever the page says, so both spellings are looked up."""
    key = tuple(sorted(labels.items()))
    if (name, key) in samples:
        return samples[(name, key)]
    return samples.get((name.removesuffix("_total") + "_total", key), 0.0)


def publish(port: int, channel: str, data: Any) -> dict[str, Any]:
    """Publish through the server API on `port`."""
    status, _, body = http(
        f"http://127.0.0.1:{port}/api/publish",
        json.dumps({"channel": channel, "data": data}).encode(),
        {"X-API-Key": API_KEY},
    )
    assert status == 200, body
    result: dict[str, Any] = json.loads(body)
    return result


def test_metrics_and_health_on_the_internal_port_and_counters_move(make_server: Any) -> None:
    internal = free_port()
    server: ServerProcess = make_server(
        {
            "http_server": {"internal_port": internal},
            "prometheus": {"enabled": True},
            "health": {"enabled": True},
        }
    )
    status, headers, body = http(f"http://127.0.0.1:{internal}/health")
    assert (status, headers["Content-Type"], body) == (200, "application/json", b"{}")
    status, _, _ = http(f"http://127.0.0.1:{internal}/health", b"{}")
    assert status == 200  # POST too, as Centrifugo
    # Internal endpoints are not served to clients.
    assert http(f"http://127.0.0.1:{server.port}/metrics")[0] == 404
    assert http(f"http://127.0.0.1:{server.port}/health")[0] == 404

    before = scrape(internal)
    assert value(before, "centrifugo_node_num_clients") == 0
    assert value(before, "centrifugo_node_build", version="0.1.0") == 1
    assert value(before, "centrifugo_node_num_nodes") == 1

    ws = RawWebSocket(server.host, server.port).open()
    assert ws.connect(make_token(SECRET, "alice", 600))["connect"]["client"]
    ws.send_json({"id": 2, "subscribe": {"channel": "news"}})
    assert "error" not in ws.reply(2)
    ws.send_json({"id": 3, "subscribe": {"channel": "locked:room"}})
    assert ws.reply(3)["error"]["code"] == 103
    for n in range(3):
        publish(internal, "news", {"n": n})
        assert ws.push()["pub"]["data"] == {"n": n}

    after = scrape(internal)
    # The page spells counters as Centrifugo does (the parser adds `_total` to them).
    page = http(f"http://127.0.0.1:{internal}/metrics")[2].decode()
    assert '\ncentrifugo_node_messages_sent_count{type="publication"' in page
    assert "\ncentrifugo_transport_messages_sent{" in page
    gauges = {
        "centrifugo_node_num_clients": 1,
        "centrifugo_node_num_users": 1,
        "centrifugo_node_num_channels": 1,
        "centrifugo_node_num_subscriptions": 1,
    }
    for name, expected in gauges.items():
        assert value(after, name) == expected, name
    assert (
        value(
            after, "centrifugo_node_messages_sent_count", type="publication", channel_namespace=""
        )
        == 3
    )
    assert (
        value(
            after,
            "centrifugo_node_messages_received_count",
            type="publication",
            channel_namespace="",
        )
        == 3
    )
    assert (
        value(
            after,
            "centrifugo_transport_messages_sent",
            transport="websocket",
            frame_type="push_publication",
            channel_namespace="",
        )
        == 3
    )
    for method, count in (("connect", 1), ("subscribe", 2)):
        assert (
            value(
                after,
                "centrifugo_transport_messages_received",
                transport="websocket",
                frame_type=method,
                channel_namespace="",
            )
            == count
        )
        histogram = "centrifugo_client_command_duration_seconds_histogram"
        assert value(after, f"{histogram}_count", method=method, channel_namespace="") == count
        assert (
            value(after, f"{histogram}_bucket", method=method, channel_namespace="", le="+Inf")
            == count
        )
        assert (
            value(
                after,
                "centrifugo_client_command_duration_seconds_count",
                method=method,
                channel_namespace="",
            )
            == count
        )
    assert (
        value(
            after,
            "centrifugo_client_num_reply_errors",
            method="subscribe",
            code="103",
            channel_namespace="",
        )
        == 1
    )
    labels = {
        "transport": "websocket",
        "accept_protocol": "h1",
        "client_name": "unnamed",
        "client_version": "unversioned",
    }
    assert value(after, "centrifugo_client_connections_accepted", **labels) == 1
    assert value(after, "centrifugo_client_connections_inflight", **labels) == 1
    api = "centrifugo_api_command_duration_seconds_histogram_count"
    assert value(after, api, protocol="http", method="publish") == 3
    assert value(after, "process_resident_memory_bytes") > 1_000_000
    assert value(after, "process_open_fds") > 0

    # A bad API body is an API error; the client's disconnect frees the inflight gauge.
    status, _, _ = http(
        f"http://127.0.0.1:{internal}/api/publish", b"{not json", {"X-API-Key": API_KEY}
    )
    assert status == 400
    ws.close()
    deadline = time.monotonic() + 5
    while True:
        final = scrape(internal)
        if value(final, "centrifugo_client_connections_inflight", **labels) == 0:
            break
        assert time.monotonic() < deadline, "inflight gauge did not drop"
        time.sleep(0.05)
    assert value(final, "centrifugo_node_num_clients") == 0
    assert (
        value(
            final,
            "centrifugo_api_command_errors_total",
            protocol="http",
            method="publish",
            error="unmarshal",
        )
        == 1
    )


def test_health_and_metrics_share_the_client_port_without_internal_port(
    make_server: Any,
) -> None:
    server = make_server(
        {
            "prometheus": {"enabled": True, "handler_prefix": "/ops/metrics"},
            "health": {"enabled": True, "handler_prefix": "/ops/health"},
        }
    )
    assert http(f"http://127.0.0.1:{server.port}/ops/health")[:3:2] == (200, b"{}")
    assert value(scrape(server.port, "/ops/metrics"), "centrifugo_node_num_clients") == 0
    assert http(f"http://127.0.0.1:{server.port}/metrics")[0] == 404


def test_disabled_by_default(server: ServerProcess) -> None:
    assert http(f"http://127.0.0.1:{server.port}/health")[0] == 404
    assert http(f"http://127.0.0.1:{server.port}/metrics")[0] == 404


def test_json_log_file_and_pid_file(tmp_path: Path, make_server: Any) -> None:
    log_file = tmp_path / "server.log"
    pid_file = tmp_path / "server.pid"
    server = make_server(
        {
            "log": {"level": "info", "file": str(log_file), "format": "json"},
            "pid_file": str(pid_file),
        }
    )
    assert server.proc is not None
    deadline = time.monotonic() + 5
    while not pid_file.exists():
        assert time.monotonic() < deadline, "no pid file"
        time.sleep(0.05)
    assert pid_file.read_text() == f"{server.proc.pid}\n"
    assert server.stop(signal.SIGTERM) == 0
    assert not pid_file.exists()
    entries = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert entries, "nothing logged"
    for entry in entries:
        assert entry["level"] in ("debug", "info", "warn", "error")
        assert entry["time"].endswith("Z") and entry["message"]
    messages = [e["message"] for e in entries]
    assert any(m.startswith("serving on") for m in messages)
    assert "shutting down" in messages
    assert all(e["level"] != "debug" for e in entries)  # log.level info


def test_unwritable_log_file_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"log": {"file": str(tmp_path / "missing" / "x.log")}}))
    done = subprocess.run(
        [sys.executable, "-m", "centrifugo_fast", "-c", str(config), "-p", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert "log.file" in done.stderr


def test_shutdown_watchdog_exits_1_and_removes_the_pid_file(tmp_path: Path) -> None:
    """A shutdown that overruns shutdown.timeout ends the process, as Centrifugo's does."""
    pid_file = tmp_path / "x.pid"
    pid_file.write_text("1\n")
    script = (
        "import time\n"
        "from centrifugo_fast.transport.server import _start_watchdog\n"
        f"_start_watchdog(0.3, {str(pid_file)!r})\n"
        "time.sleep(30)  # a shutdown that hangs\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, env=env
    )
    assert done.returncode == 1
    assert time.monotonic() - started < 10
    assert "shutdown timeout reached" in done.stderr
    assert not pid_file.exists()
