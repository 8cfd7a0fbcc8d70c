"""Redis presence entries expire `presence_ttl` after their last add: each node re-adds the
presence of its connections every `client.presence_update_interval`, so a connection stays
present as long as it is connected, and leaves presence at once when it disconnects (or
within the TTL when its node dies)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from tests.redis.helpers import Client, api, redis_config, start_servers, wait_for
from tests.redis.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.wsclient import close_all

pytestmark = pytest.mark.slow

TTL = 2.0


def _users(srv: ServerProcess, channel: str) -> list[str]:
    presence = api(srv, "presence", {"channel": channel})["result"]["presence"]
    return sorted(info["user"] for info in presence.values())


def test_presence_outlives_its_ttl_while_connected(
    make_redis: Callable[..., RedisProcess],
) -> None:
    redis = make_redis()
    config = redis_config(
        {"address": [redis.address], "prefix": "pres", "presence_ttl": f"{TTL:g}s"},
        {"client": {"presence_update_interval": "400ms"}},
    )
    a, b = start_servers(config, 2)
    try:
        alice = Client(a, "alice")
        alice.subscribe("room:r")
        bob = Client(b, "bob")
        bob.subscribe("room:r")
        assert _users(a, "room:r") == ["alice", "bob"]
        time.sleep(2.5 * TTL)  # without the refresh both entries would be gone by now
        assert _users(a, "room:r") == ["alice", "bob"]
        assert _users(b, "room:r") == ["alice", "bob"]

        # A disconnect removes the entry at once, well before it could have expired.
        closed = time.monotonic()
        alice.close()
        wait_for(lambda: _users(b, "room:r") == ["bob"], timeout=TTL)
        assert time.monotonic() - closed < TTL / 2

        # A node that dies removes nothing: its entries stop being refreshed and expire.
        b.stop(signal.SIGKILL)
        died = time.monotonic()
        wait_for(lambda: _users(a, "room:r") == [], timeout=TTL + 2)
        assert time.monotonic() - died > 0.5  # stale for a while: expiry, not a removal
    finally:
        close_all()
        a.close()
        b.close()
