"""deploy/nginx.conf in Debian's nginx, in front of two nodes sharing Redis, with real
centrifuge-js clients (WebSocket, HTTP-streaming, SSE) connecting through it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cent import ChannelsRequest, Client as CentClient, PublishRequest

from tests.redis.redisproc import RedisProcess, require_redis
from tests.sdk.common import token
from tests.sdk.jsrun import JS_DIR, node_path, run_script, run_script_with
from tests.serverproc import API_KEY, BASE_CONFIG, ROOT, ServerProcess, free_port, merge, require

EXAMPLE = ROOT / "deploy" / "nginx.conf"


def nginx_binary() -> str:
    """Debian's nginx ($NGINX_BIN, PATH, or /usr/sbin where root's PATH has it)."""
    path = os.environ.get("NGINX_BIN") or shutil.which("nginx")
    if path is None and os.access("/usr/sbin/nginx", os.X_OK):
        path = "/usr/sbin/nginx"
    require(path is not None, "nginx is not installed (apt-get install nginx)")
    assert path is not None
    return path


def derive_config(example: str, listen: int, upstreams: list[int]) -> str:
    """The example with the test's ports: its own listen port and the nodes' client ports."""
    servers = "".join(f"    server 127.0.0.1:{port};\n" for port in upstreams)
    text, count = re.subn(
        r"(?m)^    server 127\.0\.0\.1:\d+;\n(?:    server 127\.0\.0\.1:\d+;\n)*", servers, example
    )
    assert count == 1, "the upstream block of deploy/nginx.conf changed shape"
    text, count = re.subn(r"(?m)^    listen 80;$", f"    listen 127.0.0.1:{listen};", text)
    assert count == 1, "the listen line of deploy/nginx.conf changed shape"
    return text


@dataclass
class Proxy:
    """nginx in front of the nodes."""

    port: int
    nodes: list[ServerProcess]
    internal: list[int]

    def url(self, path: str, scheme: str = "http") -> str:
        """A URL through nginx."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def cent(self, index: int) -> CentClient:
        """A cent client for one node's API (its internal port, not behind nginx)."""
        return CentClient(f"http://127.0.0.1:{self.internal[index]}/api", API_KEY, timeout=5.0)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """Redis, two nodes on it (client ports behind nginx, internal ports direct), nginx."""
    binary = nginx_binary()
    node_path()
    require_redis()
    work = tmp_path_factory.mktemp("nginx")
    redis = RedisProcess().start()
    nodes: list[ServerProcess] = []
    internal: list[int] = []
    nginx: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(2):
            internal.append(free_port())
            extra = {
                "engine": {"type": "redis", "redis": {"address": [f"127.0.0.1:{redis.port}"]}},
                "http_server": {"internal_port": internal[-1]},
                "http_stream": {"enabled": True},
                "sse": {"enabled": True},
                "prometheus": {"enabled": True},
            }
            nodes.append(ServerProcess(merge(BASE_CONFIG, extra)).start())
        wait_for_cluster(internal)
        port = free_port()
        site = derive_config(EXAMPLE.read_text(), port, [n.port for n in nodes])
        (work / "site.conf").write_text(site)
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (work / sub).mkdir()
        main = f"""
daemon off;
master_process off;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 256; }}
http {{
    log_format upstream '$request_time "$request" $status $bytes_sent '
                        'upstream=$upstream_addr received=$upstream_bytes_received';
    access_log {work}/access.log upstream;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    include {work}/site.conf;
}}
"""
        (work / "nginx.conf").write_text(main)
        check = subprocess.run(
            [binary, "-t", "-p", str(work), "-c", str(work / "nginx.conf")],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stderr
        with (work / "stderr.log").open("wb") as stderr:
            nginx = subprocess.Popen(
                [binary, "-p", str(work), "-c", str(work / "nginx.conf")],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        deadline = time.monotonic() + 10
        while True:
            assert nginx.poll() is None, (work / "error.log").read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            except urllib.error.HTTPError as exc:
                exc.close()
                break  # 404 from nginx itself: it serves
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield Proxy(port, nodes, internal)
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()
        for index, node in enumerate(nodes):
            node.stop()
            # Kept next to nginx's logs for a failure's post-mortem.
            (work / f"node-{index}.log").write_text(node.output())
            node.close()
        redis.close()


def wait_for_subscriber_on_any(proxy: Proxy, channel: str, alive: Callable[[], bool]) -> None:
    """Poll each node's `channels` API until one has a subscriber of `channel`."""
    deadline = time.monotonic() + 10
    while True:
        for index in range(len(proxy.nodes)):
            with proxy.cent(index) as cent:
                info = cent.channels(ChannelsRequest(pattern=channel)).channels.get(channel)
            if info is not None and info.num_clients >= 1:
                return
        assert alive(), f"the client exited before subscribing to {channel}"
        assert time.monotonic() < deadline, f"no subscriber of {channel} on any node"
        time.sleep(0.05)


def wait_subscribed(proc: subprocess.Popen[str]) -> None:
    """Read the script's output up to its @subscribed marker (what it printed otherwise
    is in the failure)."""
    assert proc.stdout is not None
    seen = []
    while (line := proc.stdout.readline()) and line.strip() != "@subscribed":
        seen.append(line)
    assert line, f"the script ended before subscribing: {''.join(seen)}"


def metric(port: int, name: str) -> float:
    """The sum of a metric's samples on a node's /metrics page."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        page = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in page.splitlines()
        if line.startswith((name + "{", name + " "))
    )


def wait_for_cluster(internal: list[int], timeout: float = 30.0) -> None:
    """Until every node has heard of every other one (emulation requests reaching another
    node than the client's stream are forwarded only to nodes it knows)."""
    deadline = time.monotonic() + timeout
    while any(metric(port, "centrifugo_node_num_nodes") < len(internal) for port in internal):
        assert time.monotonic() < deadline, "the nodes did not discover each other"
        time.sleep(0.1)


def accepted(proxy: Proxy) -> list[float]:
    """Connections each node accepted so far (from its /metrics)."""
    return [metric(port, "centrifugo_client_connections_accepted") for port in proxy.internal]


def test_websocket_clients_on_both_nodes_talk_through_nginx(proxy: Proxy) -> None:
    before = accepted(proxy)
    args = {
        "url": proxy.url("/connection/websocket", "ws"),
        "token-a": token("alice"),
        "token-b": token("bob"),
        "channel": "chat:through-nginx",
        "denied-channel": "locked:nginx",
    }
    result = run_script(node_path(), "client_publish.js", args)
    sender = result["sender"]["connected"][0]["client"]
    assert result["receiver"]["publications"] == [
        {"data": {"text": "hello from js", "n": 42}, "info": {"client": sender, "user": "bob"}}
    ]
    assert result["deniedError"] == {"code": 103, "message": "permission denied"}
    for side in ("sender", "receiver"):
        assert result[side]["connected"][0]["transport"] == "websocket"
        assert result[side]["disconnected"] == []
    # nginx spread the two connections over the two nodes: the publication crossed Redis.
    after = accepted(proxy)
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1]


@pytest.mark.parametrize("transport", ["http_stream", "sse"])
def test_emulation_transports_through_nginx(proxy: Proxy, transport: str) -> None:
    require((JS_DIR / "node_modules" / "eventsource").is_dir(), "eventsource is not installed")
    channel = f"chat:nginx-{transport}"

    def publish(proc: subprocess.Popen[str]) -> None:
        wait_subscribed(proc)
        wait_for_subscriber_on_any(proxy, channel, lambda: proc.poll() is None)
        # The API is not behind nginx: publish on one node, wherever the client is.
        with proxy.cent(0) as cent:
            cent.publish(PublishRequest(channel=channel, data={"from": "api"}))

    args = {
        "transports": json.dumps(
            [{"transport": transport, "endpoint": proxy.url(f"/connection/{transport}")}]
        ),
        "emulation": proxy.url("/emulation"),
        "token": token("alice"),
        "channel": channel,
        "count": "2",
    }
    result: dict[str, Any] = run_script_with(node_path(), "emulation.js", args, publish)
    assert result["connected"][0]["transport"] == transport
    assert result["publishResult"] == {}
    data = sorted(json.dumps(p["data"], sort_keys=True) for p in result["publications"])
    assert data == ['{"from": "api"}', '{"from": "js"}']
    assert result["disconnected"] == []
    assert result["finalState"] == "connected"


def test_only_client_endpoints_are_proxied(proxy: Proxy) -> None:
    for path in ("/api/info", "/metrics", "/health", "/"):
        request = urllib.request.Request(proxy.url(path), data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        caught.value.close()
        assert caught.value.code == 404, path


def test_example_config_parses_as_shipped(tmp_path: Path) -> None:
    """deploy/nginx.conf itself, unmodified, passes `nginx -t` inside an http block."""
    binary = nginx_binary()
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{ include {EXAMPLE}; }}\n"
    )
    done = subprocess.run(
        [binary, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
