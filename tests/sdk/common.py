"""Helpers shared by the real-SDK tests: tokens, a cent client, polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from cent import ChannelsRequest, Client as CentClient

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import API_KEY, SECRET, ServerProcess

#: The ping settings of the ping scenario: 3+ intervals fit in the 7 s the clients stay.
PING_CONFIG = {"client": {"ping_interval": "2s", "pong_timeout": "1s"}}
#: How long the ping scenario keeps a client connected.
PING_SECONDS = 7.0
#: The most publications a recovery may return (the 31st missed one makes it fail).
RECOVERY_LIMIT = 30
#: History and recovery in `rec:`, presence and forced join/leave pushes in `room:`.
FEATURES_CONFIG: dict[str, Any] = {
    "client": {"recovery_max_publication_limit": RECOVERY_LIMIT},
    "channel": {
        "namespaces": [
            {
                "name": "rec",
                "history_size": 100,
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
    },
}


def token(user: str, ttl: int = 600) -> str:
    """A valid connection JWT for `user`."""
    return make_token(SECRET, user, ttl)


def expired_token(user: str) -> str:
    """A correctly signed connection JWT whose `exp` lies a minute in the past."""
    return make_token(SECRET, user, extra={"exp": int(time.time()) - 60})


def bad_token(user: str) -> str:
    """A connection JWT signed with the wrong key (invalid signature)."""
    return make_token("not-the-server-secret-0123456789abcdef0123", user, 600)


def cent_client(server: ServerProcess, api_key: str = API_KEY) -> CentClient:
    """A cent 5.x sync client for the server's API."""
    return CentClient(server.api_url, api_key, timeout=5.0)


def wait_for_subscriber(
    cent: CentClient, channel: str, timeout: float = 10.0, alive: Callable[[], bool] | None = None
) -> None:
    """Poll the `channels` API until `channel` has a subscriber (a script is ready)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise AssertionError(f"the client exited before subscribing to {channel}")
        info = cent.channels(ChannelsRequest(pattern=channel)).channels.get(channel)
        if info is not None and info.num_clients >= 1:
            return
        time.sleep(0.05)
    raise AssertionError(f"no subscriber appeared in {channel} within {timeout}s")


def wait_for_clients(cent: CentClient, channel: str, count: int, timeout: float = 5.0) -> None:
    """Poll the `channels` API until `channel` has exactly `count` subscribed connections."""
    deadline = time.monotonic() + timeout
    seen = -1
    while time.monotonic() < deadline:
        info = cent.channels(ChannelsRequest(pattern=channel)).channels.get(channel)
        seen = 0 if info is None else info.num_clients
        if seen == count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{channel} has {seen} subscriber(s), not {count}, after {timeout}s")


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Wait (in an event loop) until `predicate()` holds; fail with `what` after `timeout`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
