"""Clients, API calls and configs for tests of servers on the Redis engine."""

from __future__ import annotations

import json
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import API_KEY, BASE_CONFIG, SECRET, ServerProcess, merge
from tests.wsclient import RawWebSocket

T = TypeVar("T")

#: Namespaces shared by the Redis tests.
NAMESPACES: list[dict[str, Any]] = [
    {
        "name": "chat",
        "allow_subscribe_for_client": True,
        "allow_publish_for_subscriber": True,
    },
    {
        "name": "hist",
        "history_size": 10,
        "history_ttl": "300s",
        "allow_subscribe_for_client": True,
        "allow_history_for_subscriber": True,
        "allow_publish_for_subscriber": True,
    },
    {
        "name": "rec",
        "history_size": 1000,
        "history_ttl": "300s",
        "force_recovery": True,
        "allow_subscribe_for_client": True,
    },
    {
        "name": "room",
        "presence": True,
        "join_leave": True,
        "force_push_join_leave": True,
        "allow_subscribe_for_client": True,
        "allow_presence_for_subscriber": True,
        "allow_publish_for_subscriber": True,
    },
]


def redis_config(
    redis: dict[str, Any], extra: dict[str, Any] | None = None, namespaces: bool = True
) -> dict[str, Any]:
    """BASE_CONFIG on the Redis engine (`redis` is the engine.redis section)."""
    config = merge(BASE_CONFIG, {"engine": {"type": "redis", "redis": redis}})
    if namespaces:
        config = merge(config, {"channel": {"namespaces": NAMESPACES}})
    return merge(config, extra or {})


def start_servers(config: dict[str, Any], count: int) -> list[ServerProcess]:
    """`count` server processes with one config (each is its own node)."""
    servers: list[ServerProcess] = []
    try:
        for _ in range(count):
            servers.append(ServerProcess(config).start())
    except BaseException:
        for server in servers:
            server.close()
        raise
    return servers


def api(srv: ServerProcess, method: str, body: dict[str, Any], timeout: float = 5) -> Any:
    """One server API call; returns the decoded JSON answer."""
    req = urllib.request.Request(
        f"{srv.api_url}/{method}", data=json.dumps(body).encode(), headers={"X-API-Key": API_KEY}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.load(resp)


def wait_for(check: Callable[[], T | None], timeout: float = 5.0, step: float = 0.05) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, AssertionError):
            last = None
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"condition not met in {timeout}s (last: {last!r})")


class Client:
    """A JSON-protocol WebSocket client that keeps pushes arriving with replies."""

    def __init__(self, srv: ServerProcess, user: str = "u1", **connect: Any) -> None:
        self.ws = RawWebSocket(srv.host, srv.port).open()
        self.items: deque[dict[str, Any]] = deque()
        self._id = 1
        self.connect_reply = self.command(
            "connect", token=make_token(SECRET, user, 3600), **connect
        )
        assert "connect" in self.connect_reply, self.connect_reply

    def _more(self) -> None:
        self.items.extend(item for item in self.ws.recv_json() if item)

    def command(self, name: str, **body: Any) -> dict[str, Any]:
        """Send one command and return its reply; pushes meanwhile are kept."""
        self._id += 1
        cmd_id = self._id
        self.ws.send_json({"id": cmd_id, name: body})
        while True:
            for item in list(self.items):
                if item.get("id") == cmd_id:
                    self.items.remove(item)
                    return item
            self._more()

    def subscribe(self, channel: str, **fields: Any) -> dict[str, Any]:
        """Subscribe; returns the subscribe result (asserting there was no error)."""
        reply = self.command("subscribe", channel=channel, **fields)
        assert "subscribe" in reply, reply
        result: dict[str, Any] = reply["subscribe"]
        return result

    def push(self) -> dict[str, Any]:
        """The next push (waits up to the socket timeout)."""
        while True:
            for item in list(self.items):
                if "push" in item:
                    self.items.remove(item)
                    push: dict[str, Any] = item["push"]
                    return push
            self._more()

    def pubs(self, count: int) -> list[dict[str, Any]]:
        """The next `count` publications (skipping join/leave pushes)."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            push = self.push()
            if "pub" in push:
                found.append(push["pub"])
        return found

    def close(self) -> None:
        self.ws.close()
