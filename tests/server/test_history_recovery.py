"""History, recovery, positioning, presence and join/leave over a raw client."""

from __future__ import annotations

import random
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import SECRET, ServerProcess, api_call
from tests.wsclient import RawWebSocket

NAMESPACES: list[dict[str, Any]] = [
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
        "history_size": 100,
        "history_ttl": "300s",
        "force_recovery": True,
        "allow_subscribe_for_client": True,
    },
    {
        "name": "opt",
        "history_size": 100,
        "history_ttl": "300s",
        "allow_recovery": True,
        "allow_positioning": True,
        "allow_subscribe_for_client": True,
    },
    {
        "name": "cache",
        "history_size": 10,
        "history_ttl": "300s",
        "force_recovery": True,
        "force_recovery_mode": "cache",
        "allow_subscribe_for_client": True,
    },
    {
        "name": "short",
        "history_size": 10,
        "history_ttl": "1s",
        "history_meta_ttl": "2s",
        "force_positioning": True,
        "allow_subscribe_for_client": True,
        "allow_history_for_client": True,
    },
    {
        "name": "room",
        "presence": True,
        "join_leave": True,
        "allow_subscribe_for_client": True,
        "allow_presence_for_subscriber": True,
        "allow_publish_for_subscriber": True,
    },
    {
        "name": "lobby",
        "presence": True,
        "join_leave": True,
        "force_push_join_leave": True,
        "allow_subscribe_for_client": True,
    },
]
CONFIG = {
    "client": {"history_max_publication_limit": 5, "recovery_max_publication_limit": 20},
    "channel": {"namespaces": NAMESPACES},
}


@pytest.fixture(scope="module")
def srv() -> Any:
    from tests.serverproc import running_server

    yield from running_server(CONFIG)


def _client(srv: ServerProcess, user: str = "u1", **connect: Any) -> RawWebSocket:
    ws = RawWebSocket(srv.host, srv.port).open()
    reply = ws.connect(make_token(SECRET, user, 3600), **connect)
    assert "connect" in reply, reply
    return ws


def _sub(ws: RawWebSocket, channel: str, cmd_id: int = 2, **fields: Any) -> dict[str, Any]:
    ws.send_json({"id": cmd_id, "subscribe": {"channel": channel, **fields}})
    return ws.reply(cmd_id)


def _publish(srv: ServerProcess, channel: str, n: int) -> list[dict[str, Any]]:
    return [
        api_call(srv, "publish", {"channel": channel, "data": {"n": i}})["result"] for i in range(n)
    ]


def _pushes(ws: RawWebSocket, count: int) -> list[dict[str, Any]]:
    return [ws.push() for _ in range(count)]


# ---- history ----


def test_publish_returns_stream_position(srv: ServerProcess) -> None:
    first, second = _publish(srv, "hist:pos", 2)
    assert first["offset"] == 1 and second["offset"] == 2
    assert len(first["epoch"]) == 8 and first["epoch"] == second["epoch"]
    assert api_call(srv, "publish", {"channel": "plain", "data": {}}) == {"result": {}}


def test_publications_carry_offsets_and_epoch_on_the_first(srv: ServerProcess) -> None:
    ws = _client(srv)
    _sub(ws, "hist:live")
    epoch = _publish(srv, "hist:live", 2)[0]["epoch"]
    first, second = _pushes(ws, 2)
    assert first["pub"] == {"data": {"n": 0}, "offset": 1, "epoch": epoch}
    assert second["pub"] == {"data": {"n": 1}, "offset": 2}


def test_client_history_command(srv: ServerProcess) -> None:
    ws = _client(srv)
    _sub(ws, "hist:cmd")
    epoch = _publish(srv, "hist:cmd", 8)[0]["epoch"]
    _pushes(ws, 8)

    def history(cmd_id: int, **req: Any) -> dict[str, Any]:
        ws.send_json({"id": cmd_id, "history": {"channel": "hist:cmd", **req}})
        return ws.reply(cmd_id)

    assert history(3)["history"] == {"publications": [], "epoch": epoch, "offset": 8}
    # limit -1 is capped at client.history_max_publication_limit (5).
    offsets = [p["offset"] for p in history(4, limit=-1)["history"]["publications"]]
    assert offsets == [1, 2, 3, 4, 5]
    offsets = [p["offset"] for p in history(5, limit=2, reverse=True)["history"]["publications"]]
    assert offsets == [8, 7]
    since = {"offset": 6, "epoch": epoch}
    pubs = history(6, limit=10, since=since)["history"]["publications"]
    assert [p["offset"] for p in pubs] == [7, 8]
    assert pubs[0]["data"] == {"n": 6}
    assert history(7, limit=1, since={"offset": 1, "epoch": "wrong"})["error"]["code"] == 112
    assert (
        history(8, limit=1, reverse=True, since={"offset": 0, "epoch": epoch})["error"]["code"]
        == 107
    )
    other = _client(srv, "u2")
    other.send_json({"id": 2, "history": {"channel": "hist:cmd", "limit": 1}})
    assert other.reply(2)["error"]["code"] == 103  # subscribers only


def test_history_size_trims_and_api_history(srv: ServerProcess) -> None:
    epoch = _publish(srv, "hist:trim", 15)[0]["epoch"]
    result = api_call(srv, "history", {"channel": "hist:trim", "limit": -1})["result"]
    assert [p["offset"] for p in result["publications"]] == list(range(6, 16))
    assert (result["offset"], result["epoch"]) == (15, epoch)
    assert result["publications"][0]["data"] == {"n": 5}
    wrong = api_call(srv, "history", {"channel": "hist:trim", "since": {"offset": 3, "epoch": "x"}})
    assert wrong["error"]["code"] == 112
    assert api_call(srv, "history", {"channel": "plain"})["error"]["code"] == 108


def test_history_remove_keeps_position(srv: ServerProcess) -> None:
    epoch = _publish(srv, "hist:rm", 3)[0]["epoch"]
    assert api_call(srv, "history_remove", {"channel": "hist:rm"}) == {"result": {}}
    result = api_call(srv, "history", {"channel": "hist:rm", "limit": -1})["result"]
    assert result == {"publications": [], "offset": 3, "epoch": epoch}
    assert api_call(srv, "publish", {"channel": "hist:rm", "data": 1})["result"]["offset"] == 4


def test_skip_history_and_idempotency(srv: ServerProcess) -> None:
    _publish(srv, "hist:idem", 1)
    skipped = api_call(srv, "publish", {"channel": "hist:idem", "data": 1, "skip_history": True})
    assert skipped == {"result": {}}
    body = {"channel": "hist:idem", "data": {"pay": 1}, "idempotency_key": "order-42"}
    first = api_call(srv, "publish", body)["result"]
    again = api_call(srv, "publish", body)["result"]
    assert first == again and first["offset"] == 2
    result = api_call(srv, "history", {"channel": "hist:idem", "limit": -1})["result"]
    assert [p["offset"] for p in result["publications"]] == [1, 2]  # one copy only


def test_history_ttl_clears_items_but_keeps_position(srv: ServerProcess) -> None:
    epoch = _publish(srv, "short:ttl", 2)[0]["epoch"]
    deadline = time.monotonic() + 4  # history_ttl 1s; expiry runs once a second
    result: dict[str, Any] = {}
    while time.monotonic() < deadline:
        result = api_call(srv, "history", {"channel": "short:ttl", "limit": -1})["result"]
        if not result["publications"]:
            break
        time.sleep(0.1)
    assert result == {"publications": [], "offset": 2, "epoch": epoch}


# ---- recovery ----


def _position(srv: ServerProcess, channel: str) -> tuple[int, str]:
    result = api_call(srv, "history", {"channel": channel})["result"]
    return result["offset"], result["epoch"]


@pytest.mark.parametrize("missed", [0, 1, 10, 20])
def test_recovery_returns_exactly_the_missed(srv: ServerProcess, missed: int) -> None:
    channel = f"rec:n{missed}"
    ws = _client(srv)
    result = _sub(ws, channel)["subscribe"]
    assert result["recoverable"] is True and result["positioned"] is True
    _publish(srv, channel, 3)
    _pushes(ws, 3)
    offset, epoch = _position(srv, channel)
    ws.close()
    _publish(srv, channel, missed)
    back = _client(srv)
    result = _sub(back, channel, recover=True, offset=offset, epoch=epoch)["subscribe"]
    assert result["was_recovering"] is True and result["recovered"] is True
    pubs = result.get("publications", [])
    assert [p["offset"] for p in pubs] == list(range(offset + 1, offset + 1 + missed))
    assert [p["data"]["n"] for p in pubs] == list(range(missed))
    assert result["offset"] == offset and result["epoch"] == epoch
    # Live publications continue right after the recovered ones.
    _publish(srv, channel, 1)
    assert back.push()["pub"]["offset"] == offset + missed + 1


def test_recovery_beyond_the_limit_is_not_recovered(srv: ServerProcess) -> None:
    _publish(srv, "rec:big", 2)
    offset, epoch = _position(srv, "rec:big")
    _publish(srv, "rec:big", 21)  # recovery_max_publication_limit is 20
    ws = _client(srv)
    result = _sub(ws, "rec:big", recover=True, offset=offset, epoch=epoch)["subscribe"]
    assert result["was_recovering"] is True
    assert "recovered" not in result and "publications" not in result
    assert (result["offset"], result["epoch"]) == (offset + 21, epoch)


def test_recovery_with_another_epoch_is_not_recovered(srv: ServerProcess) -> None:
    _publish(srv, "rec:ep", 2)
    ws = _client(srv)
    result = _sub(ws, "rec:ep", recover=True, offset=1, epoch="foreign")["subscribe"]
    assert "recovered" not in result and "publications" not in result
    assert result["offset"] == 2


def test_recovery_from_an_offset_in_the_future(srv: ServerProcess) -> None:
    offset, epoch = _position(srv, "rec:future")
    ws = _client(srv)
    result = _sub(ws, "rec:future", recover=True, offset=offset + 1000, epoch=epoch)["subscribe"]
    assert "recovered" not in result and "publications" not in result


def test_recovery_needs_the_option(srv: ServerProcess) -> None:
    ws = _client(srv)
    assert _sub(ws, "hist:norec", recover=True, offset=1) == {"id": 2, "subscribe": {}}
    # allow_recovery: only when the client asks for it.
    result = _sub(ws, "opt:x", 3, recoverable=True)["subscribe"]
    assert result["recoverable"] is True and result["positioned"] is True
    assert _sub(ws, "opt:y", 4)["subscribe"] == {}
    assert _sub(ws, "opt:z", 5, positioned=True)["subscribe"]["positioned"] is True


def test_cache_recovery_returns_only_the_latest(srv: ServerProcess) -> None:
    _publish(srv, "cache:x", 5)
    ws = _client(srv)
    result = _sub(ws, "cache:x", recover=True, offset=1, epoch="")["subscribe"]
    assert result["recovered"] is True
    assert [p["offset"] for p in result["publications"]] == [5]


def test_server_side_subscription_recovers_at_connect(srv: ServerProcess) -> None:
    _publish(srv, "rec:srv", 2)
    offset, epoch = _position(srv, "rec:srv")
    _publish(srv, "rec:srv", 3)
    ws = RawWebSocket(srv.host, srv.port).open()
    token = make_token(SECRET, "u1", 3600, extra={"channels": ["rec:srv"]})
    reply = ws.connect(token, subs={"rec:srv": {"recover": True, "offset": offset, "epoch": epoch}})
    sub = reply["connect"]["subs"]["rec:srv"]
    assert sub["recovered"] is True and sub["was_recovering"] is True
    assert [p["offset"] for p in sub["publications"]] == [offset + 1, offset + 2, offset + 3]


def test_new_epoch_gives_positioned_subscribers_insufficient_state(srv: ServerProcess) -> None:
    ws = _client(srv)
    first = _sub(ws, "short:pos")["subscribe"]
    assert first["positioned"] is True
    time.sleep(3.5)  # meta TTL 2s + one expiry tick: the next publish starts a new epoch
    new_epoch = api_call(srv, "publish", {"channel": "short:pos", "data": 1})["result"]["epoch"]
    assert new_epoch != first["epoch"]
    assert ws.push() == {
        "channel": "short:pos",
        "unsubscribe": {"code": 2500, "reason": "insufficient state"},
    }


def test_publishing_while_clients_resubscribe_never_loses_or_repeats(make_server: Any) -> None:
    # Its own server: the module's recovery limit (20) can be exceeded during a slow reconnect
    # on a loaded machine, and then `recovered: false` would be the right answer.
    srv = make_server(
        {
            "client": {"recovery_max_publication_limit": 5000},
            "channel": {
                "namespaces": [
                    {
                        "name": "rec",
                        "history_size": 5000,
                        "history_ttl": "300s",
                        "force_recovery": True,
                        "allow_subscribe_for_client": True,
                    }
                ]
            },
        }
    )
    channel = "rec:storm"
    stop = threading.Event()

    def publisher() -> None:
        n = 0
        while not stop.is_set():
            api_call(srv, "publish", {"channel": channel, "data": {"n": n}})
            n += 1

    thread = threading.Thread(target=publisher, daemon=True)
    ws = _client(srv)
    result = _sub(ws, channel)["subscribe"]
    offset, epoch = result.get("offset", 0), result["epoch"]  # offset 0 is omitted
    thread.start()
    seen: list[int] = []
    rng = random.Random(7)
    try:
        for round_ in range(15):
            deadline = time.monotonic() + rng.uniform(0.02, 0.1)
            while time.monotonic() < deadline:
                seen.append(ws.push()["pub"]["offset"])
            offset = seen[-1] if seen else offset
            ws.close()
            ws = _client(srv)
            reply = _sub(ws, channel, recover=True, offset=offset, epoch=epoch)["subscribe"]
            assert reply.get("recovered") is True, (round_, reply)
            seen += [p["offset"] for p in reply.get("publications", [])]
    finally:
        stop.set()
        thread.join(5)
    assert seen == list(range(seen[0], seen[0] + len(seen)))  # contiguous: no gap, no repeat


# ---- presence and join/leave ----


def test_presence_and_stats(srv: ServerProcess) -> None:
    a = _client(srv, "alice")
    b = _client(srv, "bob")
    c = _client(srv, "bob")
    for ws in (a, b, c):
        _sub(ws, "room:p")
    result = api_call(srv, "presence", {"channel": "room:p"})["result"]["presence"]
    users = sorted(info["user"] for info in result.values())
    assert users == ["alice", "bob", "bob"]
    assert all(client == info["client"] for client, info in result.items())
    ids = list(result)
    assert api_call(srv, "presence_stats", {"channel": "room:p"})["result"] == {
        "num_clients": 3,
        "num_users": 2,
    }
    a.send_json({"id": 3, "presence": {"channel": "room:p"}})
    assert set(a.reply(3)["presence"]["presence"]) == set(ids)
    c.send_json({"id": 3, "unsubscribe": {"channel": "room:p"}})
    c.reply(3)
    b.close()
    deadline = time.monotonic() + 5
    stats: dict[str, Any] = {}
    while time.monotonic() < deadline:
        stats = api_call(srv, "presence_stats", {"channel": "room:p"})["result"]
        if stats["num_clients"] == 1:
            break
        time.sleep(0.05)
    assert stats == {"num_clients": 1, "num_users": 1}
    stranger = _client(srv, "eve")
    stranger.send_json({"id": 2, "presence": {"channel": "room:p"}})
    assert stranger.reply(2)["error"]["code"] == 103


def test_join_leave_opt_in(srv: ServerProcess) -> None:
    watcher = _client(srv, "w")
    assert _sub(watcher, "room:jl", join_leave=True) == {"id": 2, "subscribe": {}}
    # As in Centrifugo, a join/leave receiver also gets its own join, after its reply.
    assert watcher.push()["join"]["info"]["user"] == "w"
    quiet = _client(srv, "q")
    _sub(quiet, "room:jl")  # did not opt in to receive, but its join is announced
    assert watcher.push()["join"]["info"]["user"] == "q"
    joiner = _client(srv, "j")
    _sub(joiner, "room:jl")
    join = watcher.push()
    assert join["channel"] == "room:jl" and join["join"]["info"]["user"] == "j"
    joiner.close()
    leave = watcher.push()
    assert leave["leave"]["info"]["user"] == "j"
    # The quiet subscriber got neither: its next push is an ordinary publication.
    api_call(srv, "publish", {"channel": "room:jl", "data": {"x": 1}})
    assert quiet.push() == {"channel": "room:jl", "pub": {"data": {"x": 1}}}


def test_force_push_join_leave_and_reply_first(srv: ServerProcess) -> None:
    first = _client(srv, "f1")
    _sub(first, "lobby:x")
    second = _client(srv, "f2")
    second.send_json({"id": 2, "subscribe": {"channel": "lobby:x"}})
    # The joining client sees its subscribe reply before its own join push.
    frames: list[dict[str, Any]] = []
    while not any("join" in item.get("push", {}) for item in frames):
        frames += second.recv_json()
    kinds = ["reply" if item.get("id") == 2 else "join" for item in frames if item]
    assert kinds[0] == "reply"
    assert first.push()["join"]["info"]["user"] == "f1"  # its own join
    assert first.push()["join"]["info"]["user"] == "f2"


def test_client_gone_mid_recovery_and_huge_limits(srv: ServerProcess) -> None:
    _publish(srv, "rec:gone", 15)
    offset, epoch = _position(srv, "rec:gone")
    for _ in range(10):
        ws = RawWebSocket(srv.host, srv.port).open()
        ws.send_json(
            {"id": 1, "connect": {"token": make_token(SECRET, "g", 60)}},
            {"id": 2, "subscribe": {"channel": "rec:gone", "recover": True, "offset": 1}},
        )
        ws.close()  # gone before reading the recovered publications
    watcher = _client(srv)
    result = _sub(watcher, "rec:gone", recover=True, offset=offset - 3, epoch=epoch)
    assert [p["offset"] for p in result["subscribe"]["publications"]] == [13, 14, 15]
    huge = api_call(srv, "history", {"channel": "rec:gone", "limit": 2**31 - 1})["result"]
    assert len(huge["publications"]) == 15
    with pytest.raises(urllib.error.HTTPError) as exc:  # limit is an int32, as in Centrifugo
        api_call(srv, "history", {"channel": "rec:gone", "limit": 2**40})
    assert exc.value.code == 400
    exc.value.close()
    stats = api_call(srv, "info", {})["result"]["nodes"][0]
    assert stats["num_clients"] >= 1 and srv.alive()
