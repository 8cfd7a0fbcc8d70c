"""Three server processes on one Redis: one cluster of nodes (issue done-when (a))."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis.helpers import Client, api, redis_config, start_servers, wait_for
from tests.redis.redisproc import RedisProcess
from tests.serverproc import ServerProcess
from tests.wsclient import ConnectionClosedError, close_all

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nodes(redis_server: RedisProcess) -> Iterator[list[ServerProcess]]:
    config = redis_config({"address": [redis_server.address], "prefix": "multi"})
    servers = start_servers(config, 3)
    yield servers
    close_all()
    for server in servers:
        server.close()


def test_publications_cross_nodes(nodes: list[ServerProcess]) -> None:
    a, b, c = nodes
    on_a, on_c = Client(a, "ann"), Client(c, "cid")
    on_a.subscribe("chat:x")
    on_c.subscribe("chat:x")
    assert api(b, "publish", {"channel": "chat:x", "data": {"n": 1}}) == {"result": {}}
    assert on_a.pubs(1)[0]["data"] == {"n": 1}
    assert on_c.pubs(1)[0]["data"] == {"n": 1}
    # A client's publish on node A reaches the subscriber on node C, with its info.
    reply = on_a.command("publish", channel="chat:x", data={"from": "ann"})
    assert reply.get("publish") == {}, reply
    pub = on_c.pubs(1)[0]
    assert pub["data"] == {"from": "ann"} and pub["info"]["user"] == "ann"
    assert on_a.pubs(1)[0]["data"] == {"from": "ann"}


def test_history_and_positions_shared(nodes: list[ServerProcess]) -> None:
    a, b, c = nodes
    sub = Client(b, "bo")
    sub.subscribe("hist:shared")
    results = [
        api(n, "publish", {"channel": "hist:shared", "data": {"i": i}})
        for i, n in enumerate([a, b, c, a, b, c])
    ]
    offsets = [r["result"]["offset"] for r in results]
    assert offsets == [1, 2, 3, 4, 5, 6]
    epoch = results[0]["result"]["epoch"]
    assert {r["result"]["epoch"] for r in results} == {epoch}
    pubs = sub.pubs(6)
    assert [p["offset"] for p in pubs] == [1, 2, 3, 4, 5, 6]
    assert pubs[0]["epoch"] == epoch
    history = api(c, "history", {"channel": "hist:shared", "limit": -1})["result"]
    assert [p["data"]["i"] for p in history["publications"]] == list(range(6))
    assert (history["offset"], history["epoch"]) == (6, epoch)
    reply = sub.command("history", channel="hist:shared", limit=2, reverse=True)
    assert [p["offset"] for p in reply["history"]["publications"]] == [6, 5]


def test_presence_and_join_leave_shared(nodes: list[ServerProcess]) -> None:
    a, b, c = nodes
    alice = Client(a, "alice")
    alice.subscribe("room:1")
    assert alice.push()["join"]["info"]["user"] == "alice"
    bob = Client(c, "bob")
    bob.subscribe("room:1")
    assert alice.push()["join"]["info"]["user"] == "bob"
    presence = api(b, "presence", {"channel": "room:1"})["result"]["presence"]
    assert sorted(info["user"] for info in presence.values()) == ["alice", "bob"]
    stats = api(b, "presence_stats", {"channel": "room:1"})["result"]
    assert stats == {"num_clients": 2, "num_users": 2}
    reply = bob.command("presence", channel="room:1")
    assert set(reply["presence"]["presence"]) == set(presence)
    bob.close()
    assert alice.push()["leave"]["info"]["user"] == "bob"
    wait_for(lambda: api(a, "presence_stats", {"channel": "room:1"})["result"]["num_clients"] == 1)


def test_info_lists_every_node(nodes: list[ServerProcess]) -> None:
    def three() -> list[dict[str, object]] | None:
        found = api(nodes[1], "info", {})["result"]["nodes"]
        return found if len(found) == 3 else None

    found = wait_for(three, timeout=8)
    assert len({n["uid"] for n in found}) == 3


def test_disconnect_reaches_the_user_on_another_node(nodes: list[ServerProcess]) -> None:
    a, _, c = nodes
    victim = Client(c, "victim")
    bystander = Client(c, "bystander")
    assert api(a, "disconnect", {"user": "victim"}) == {"result": {}}
    victim.ws.sock.settimeout(5)
    try:
        code = victim.ws.close_code()
    except ConnectionClosedError:
        code = 0
    assert code == 3503
    reply = bystander.command("presence", channel="chat:none")
    assert "error" in reply  # still connected and answered (presence is off in chat)
