"""Presence, presence stats and join/leave pushes with centrifuge-js 5.8.0, centrifuge-python
0.7.0 and cent 5.2.0, in a `room:*` namespace that keeps presence and forces join/leave pushes.

As in Centrifugo, a join is broadcast to every subscriber once the subscribe reply is written,
the joining client included (it sees its own join); a leave is broadcast after the client left,
so only the others see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from cent import (
    Client as CentClient,
    ClientInfo as CentClientInfo,
    PresenceRequest,
    PresenceResult,
    PresenceStatsRequest,
    PresenceStatsResult,
)
from centrifuge import ClientState

from tests.sdk.common import FEATURES_CONFIG, eventually, token, wait_for_clients
from tests.sdk.jsrun import run_script
from tests.sdk.pysdk import ClientLog, StreamLog, assert_stayed_connected, new_client, run
from tests.serverproc import ServerProcess, running_server
from tests.wsclient import RawWebSocket

pytestmark = pytest.mark.sdk


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """One server with presence/join-leave namespaces for the module."""
    yield from running_server(FEATURES_CONFIG)


def test_js_presence_and_join_leave(node: str, server: ServerProcess) -> None:
    args = {
        "url": server.ws_url,
        "token-a": token("a"),
        "token-b": token("b"),
        "channel": "room:js",
    }
    result = run_script(node, "presence.js", args)
    id_a, id_b = result["ids"]["a"], result["ids"]["b"]
    assert id_a != id_b
    assert result["a"]["connected"][0]["client"] == id_a
    assert result["b"]["connected"][0]["client"] == id_b
    info_a, info_b = {"user": "a", "client": id_a}, {"user": "b", "client": id_b}

    both = {"clients": {id_a: info_a, id_b: info_b}}
    assert result["presenceA"] == both
    assert result["presenceB"] == both
    assert result["statsA"] == {"numClients": 2, "numUsers": 2}
    assert result["statsB"] == {"numClients": 2, "numUsers": 2}
    assert result["statsAfterUnsubscribe"] == {"numClients": 1, "numUsers": 1}
    assert result["statsAfterResubscribe"] == {"numClients": 2, "numUsers": 2}
    assert result["presenceAfterDisconnect"] == {"clients": {id_a: info_a}}
    assert result["statsAfterDisconnect"] == {"numClients": 1, "numUsers": 1}

    # a: its own join, b's join, b's leave (unsubscribe), join (resubscribe), leave (disconnect).
    assert result["a"]["joins"] == [info_a, info_b, info_b]
    assert result["a"]["leaves"] == [info_b, info_b]
    # b: its own join on each of its two subscriptions, never a leave (it is gone by then).
    assert result["b"]["joins"] == [info_b, info_b]
    assert result["b"]["leaves"] == []

    for side in ("a", "b"):
        assert result[side]["errors"] == [] and result[side]["subErrors"] == []
        assert result[side]["connecting"] == [{"code": 0, "reason": "connect called"}]
        assert len(result[side]["connected"]) == 1
    assert result["a"]["disconnected"] == []
    assert result["b"]["disconnected"] == [{"code": 0, "reason": "disconnect called"}]
    assert result["b"]["unsubscribed"] == [{"code": 0, "reason": "unsubscribe called"}]
    assert len(result["b"]["subscribed"]) == 2
    assert result["finalState"] == "connected"


def test_py_presence_and_join_leave(server: ServerProcess) -> None:
    channel = "room:py"
    log_a, log_b = ClientLog(), ClientLog()
    sub_log_a, sub_log_b = StreamLog(), StreamLog()
    seen: dict[str, Any] = {}

    def joins_of(sub_log: StreamLog, user: str) -> int:
        return sum(1 for joined, _ in sub_log.joins if joined == user)

    def leaves_of(sub_log: StreamLog, user: str) -> int:
        return sum(1 for left, _ in sub_log.leaves if left == user)

    async def scenario(clients: list[Any]) -> None:
        a = new_client(server, log_a, token("a"))
        b = new_client(server, log_b, token("b"))
        clients += [a, b]
        sub_a = a.new_subscription(channel, events=sub_log_a)
        sub_b = b.new_subscription(channel, events=sub_log_b)
        await a.connect()
        await sub_a.subscribe()
        await sub_a.ready(5.0)
        await b.connect()
        await sub_b.subscribe()
        await sub_b.ready(5.0)
        await eventually(lambda: joins_of(sub_log_a, "b") >= 1, "the join of b")

        seen["presence_a"] = (await sub_a.presence()).clients
        seen["presence_b"] = (await sub_b.presence()).clients
        seen["stats_a"] = await sub_a.presence_stats()
        seen["stats_b"] = await sub_b.presence_stats()

        await sub_b.unsubscribe()
        await eventually(lambda: leaves_of(sub_log_a, "b") >= 1, "the leave after unsubscribe")
        seen["stats_after_unsubscribe"] = await sub_a.presence_stats()

        await sub_b.subscribe()
        await sub_b.ready(5.0)
        await eventually(lambda: joins_of(sub_log_a, "b") >= 2, "the second join of b")
        seen["stats_after_resubscribe"] = await sub_a.presence_stats()

        await b.disconnect()
        await eventually(lambda: leaves_of(sub_log_a, "b") >= 2, "the leave after disconnect")
        seen["presence_after_disconnect"] = (await sub_a.presence()).clients
        seen["stats_after_disconnect"] = await sub_a.presence_stats()
        await asyncio.sleep(0.3)  # a duplicate join or leave would show up by now
        assert a.state == ClientState.CONNECTED

    run(scenario, log_a, log_b, sub_log_a, sub_log_b)
    id_a, id_b = log_a.connected[0], log_b.connected[0]
    assert id_a != id_b
    for presence in (seen["presence_a"], seen["presence_b"]):
        assert {key: (info.user, info.client) for key, info in presence.items()} == {
            id_a: ("a", id_a),
            id_b: ("b", id_b),
        }
    assert {
        key: (info.user, info.client) for key, info in seen["presence_after_disconnect"].items()
    } == {id_a: ("a", id_a)}
    stats = {
        name: (seen[name].num_clients, seen[name].num_users)
        for name in (
            "stats_a",
            "stats_b",
            "stats_after_unsubscribe",
            "stats_after_resubscribe",
            "stats_after_disconnect",
        )
    }
    assert stats == {
        "stats_a": (2, 2),
        "stats_b": (2, 2),
        "stats_after_unsubscribe": (1, 1),
        "stats_after_resubscribe": (2, 2),
        "stats_after_disconnect": (1, 1),
    }
    assert sub_log_a.joins == [("a", id_a), ("b", id_b), ("b", id_b)]
    assert sub_log_a.leaves == [("b", id_b), ("b", id_b)]
    assert sub_log_b.joins == [("b", id_b), ("b", id_b)]
    assert sub_log_b.leaves == []
    assert_stayed_connected(log_a)
    assert log_a.errors == log_b.errors == sub_log_a.errors == sub_log_b.errors == []
    assert sub_log_b.unsubscribed == [(0, "unsubscribe called")]
    assert sub_log_b.subscribed == [channel, channel]


def _subscriber(server: ServerProcess, user: str, channel: str) -> str:
    """A raw WebSocket client of `user` subscribed to `channel`; returns its client id."""
    ws = RawWebSocket(server.host, server.port).open()
    client_id: str = ws.connect(token(user))["connect"]["client"]
    ws.send_json({"id": 2, "subscribe": {"channel": channel}})
    reply = ws.reply(2)
    assert "error" not in reply, reply
    return client_id


def test_cent_presence_and_presence_stats(server: ServerProcess, cent: CentClient) -> None:
    channel = "room:1"
    id_a = _subscriber(server, "a", channel)
    id_b = _subscriber(server, "b", channel)
    id_b2 = _subscriber(server, "b", channel)  # a second connection of the same user
    wait_for_clients(cent, channel, 3)

    presence = cent.presence(PresenceRequest(channel=channel))
    assert isinstance(presence, PresenceResult)
    assert set(presence.presence) == {id_a, id_b, id_b2}
    for client_id, user in ((id_a, "a"), (id_b, "b"), (id_b2, "b")):
        info = presence.presence[client_id]
        assert isinstance(info, CentClientInfo)
        assert (info.client, info.user) == (client_id, user)
        assert info.conn_info is None and info.chan_info is None

    stats = cent.presence_stats(PresenceStatsRequest(channel=channel))
    assert isinstance(stats, PresenceStatsResult)
    assert (stats.num_clients, stats.num_users) == (3, 2)

    # Nobody in another channel of the namespace: empty, not an error.
    assert cent.presence(PresenceRequest(channel="room:empty")).presence == {}
    empty = cent.presence_stats(PresenceStatsRequest(channel="room:empty"))
    assert (empty.num_clients, empty.num_users) == (0, 0)
