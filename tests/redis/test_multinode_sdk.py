"""centrifuge-python clients on three nodes of one Redis act as one cluster: each client's
publication reaches the others, presence and history are the same from every node."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.redis.helpers import redis_config, start_servers
from tests.redis.redisproc import RedisProcess
from tests.sdk.common import eventually, token
from tests.sdk.pysdk import ClientLog, SubLog, assert_stayed_connected, new_client, run
from tests.serverproc import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.sdk]

CHANNEL = "together:room"
NAMESPACE = {
    "name": "together",
    "presence": True,
    "history_size": 10,
    "history_ttl": "300s",
    "allow_subscribe_for_client": True,
    "allow_publish_for_subscriber": True,
    "allow_presence_for_subscriber": True,
    "allow_history_for_subscriber": True,
}
USERS = ("alice", "bob", "carol")


@pytest.fixture(scope="module")
def nodes(redis_server: RedisProcess) -> Iterator[list[ServerProcess]]:
    config = redis_config(
        {"address": [redis_server.address], "prefix": "multisdk"},
        {"channel": {"namespaces": [NAMESPACE]}},
        namespaces=False,
    )
    servers = start_servers(config, 3)
    yield servers
    for server in servers:
        server.close()


def test_sdk_clients_on_three_nodes_share_publications_presence_history(
    nodes: list[ServerProcess],
) -> None:
    logs = [ClientLog() for _ in USERS]
    sub_logs = [SubLog() for _ in USERS]
    seen: dict[str, Any] = {}

    async def scenario(clients: list[Any]) -> None:
        subs = []
        for node, user, log, sub_log in zip(nodes, USERS, logs, sub_logs, strict=True):
            client = new_client(node, log, token(user))
            clients.append(client)
            sub = client.new_subscription(CHANNEL, events=sub_log)
            await client.connect()
            await sub.subscribe()
            await sub.ready(5.0)
            subs.append(sub)
        for sub, user in zip(subs, USERS, strict=True):
            await sub.publish({"from": user})
        await eventually(
            lambda: all(len(s.publications) >= len(USERS) for s in sub_logs),
            "every publication on every node",
        )
        seen["presence"] = [await sub.presence() for sub in subs]
        seen["history"] = [await sub.history(limit=10) for sub in subs]

    run(scenario, *logs, *sub_logs)
    ids = [log.connected[0] for log in logs]
    expected = [({"from": user}, (cid, user)) for cid, user in zip(ids, USERS, strict=True)]
    for sub_log in sub_logs:
        assert sub_log.publications == expected  # in publish order, with the publisher's info
    members = {cid: user for cid, user in zip(ids, USERS, strict=True)}
    for presence in seen["presence"]:  # asked on node A, B and C
        assert {cid: info.user for cid, info in presence.clients.items()} == members
    for history in seen["history"]:
        assert [p.data for p in history.publications] == [{"from": user} for user in USERS]
        assert [int(p.offset) for p in history.publications] == [1, 2, 3]
    epochs = {history.epoch for history in seen["history"]}
    assert len(epochs) == 1 and "" not in epochs
    for log in logs:
        assert_stayed_connected(log)
