"""Channel options and every permission branch of spec §4.7, over a raw client."""

from __future__ import annotations

from typing import Any

import pytest

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import SECRET, ServerProcess, api_call
from tests.wsclient import RawWebSocket

NAMESPACES: list[dict[str, Any]] = [
    {"name": "dm", "allow_user_limited_channels": True, "allow_subscribe_for_client": True},
    {"name": "strict", "allow_subscribe_for_client": True, "channel_regex": "^[a-z0-9_]+$"},
    {
        "name": "anon",
        "allow_subscribe_for_client": True,
        "allow_subscribe_for_anonymous": True,
        "allow_publish_for_client": True,
        "allow_publish_for_anonymous": True,
    },
    {"name": "subpub", "allow_subscribe_for_client": True, "allow_publish_for_subscriber": True},
    {
        "name": "pres",
        "presence": True,
        "allow_subscribe_for_client": True,
        "allow_presence_for_subscriber": True,
    },
    {"name": "nopres", "allow_subscribe_for_client": True},
    {
        "name": "hist",
        "history_size": 10,
        "history_ttl": "60s",
        "allow_subscribe_for_client": True,
        "allow_history_for_client": True,
    },
    {"name": "histlocked", "history_size": 10, "history_ttl": "60s"},
    {"name": "fmt", "allow_publish_for_client": True, "publication_data_format": "json_object"},
    {"name": "bin", "allow_publish_for_client": True, "publication_data_format": "binary"},
    {"name": "personal", "allow_subscribe_for_client": True},
]
CONFIG = {
    "client": {
        "allow_anonymous_connect_without_token": True,
        "subscribe_to_user_personal_channel": {
            "enabled": True,
            "personal_channel_namespace": "personal",
        },
    },
    "channel": {"namespaces": NAMESPACES},
}


@pytest.fixture(scope="module")
def srv() -> Any:
    from tests.serverproc import running_server

    yield from running_server(CONFIG)


def _client(srv: ServerProcess, user: str | None = "u1", **claims: Any) -> RawWebSocket:
    ws = RawWebSocket(srv.host, srv.port).open()
    token = make_token(SECRET, user, 3600, extra=claims or None) if user is not None else ""
    reply = ws.connect(token)
    assert "connect" in reply, reply
    return ws


def _sub(ws: RawWebSocket, channel: str, cmd_id: int = 2, **fields: Any) -> dict[str, Any]:
    ws.send_json({"id": cmd_id, "subscribe": {"channel": channel, **fields}})
    return ws.reply(cmd_id)


def _code(reply: dict[str, Any]) -> int | None:
    error = reply.get("error")
    return None if error is None else int(error["code"])


def test_user_limited_channel(srv: ServerProcess) -> None:
    assert _sub(_client(srv, "7"), "dm:chat#7,9") == {"id": 2, "subscribe": {}}
    assert _sub(_client(srv, "9"), "dm:chat#7,9") == {"id": 2, "subscribe": {}}
    assert _code(_sub(_client(srv, "8"), "dm:chat#7,9")) == 103
    assert _code(_sub(_client(srv, None), "dm:chat#7,9")) == 103
    # allow_subscribe_for_client never grants a user-limited channel to someone else.
    assert _code(_sub(_client(srv, "8"), "dm:x#7")) == 103
    # Without `#` the namespace rule applies as usual.
    assert _sub(_client(srv, "8"), "dm:lobby") == {"id": 2, "subscribe": {}}


def test_user_limited_needs_the_option(srv: ServerProcess) -> None:
    # `#` in a namespace without allow_user_limited_channels is just a name.
    assert _sub(_client(srv, "7"), "subpub:chat#7") == {"id": 2, "subscribe": {}}
    assert _code(_sub(_client(srv, "7"), "histlocked:x#7")) == 103


def test_channel_regex_and_ascii_names(srv: ServerProcess) -> None:
    ws = _client(srv)
    assert _sub(ws, "strict:abc_1") == {"id": 2, "subscribe": {}}
    assert _code(_sub(ws, "strict:ABC", 3)) == 107
    assert _code(_sub(ws, "subpub:чат", 4)) == 107  # non-ASCII without a regex
    ws.send_json({"id": 5, "publish": {"channel": "strict:ABC", "data": {}}})
    assert _code(ws.reply(5)) == 107


def test_error_precedence(srv: ServerProcess) -> None:
    ws = _client(srv)
    assert _code(_sub(ws, "nope:" + "x" * 300)) == 107  # too long beats unknown namespace
    assert _code(_sub(ws, "nope:x", 3)) == 102
    assert _code(_sub(ws, "$nope:x", 4)) == 102  # private prefix is stripped for the namespace


def test_anonymous_rules(srv: ServerProcess) -> None:
    anon = _client(srv, None)
    assert _code(_sub(anon, "subpub:x")) == 103
    assert _sub(anon, "anon:x", 3) == {"id": 3, "subscribe": {}}
    anon.send_json({"id": 4, "publish": {"channel": "anon:x", "data": {"a": 1}}})
    assert anon.reply(4) == {"id": 4, "publish": {}}
    anon.send_json({"id": 5, "publish": {"channel": "subpub:x", "data": {"a": 1}}})
    assert _code(anon.reply(5)) == 103


def test_publish_for_subscriber(srv: ServerProcess) -> None:
    ws = _client(srv)
    ws.send_json({"id": 2, "publish": {"channel": "subpub:room", "data": {}}})
    assert _code(ws.reply(2)) == 103
    _sub(ws, "subpub:room", 3)
    ws.send_json({"id": 4, "publish": {"channel": "subpub:room", "data": {"n": 1}}})
    assert ws.reply(4) == {"id": 4, "publish": {}}


def test_publication_data_format(srv: ServerProcess) -> None:
    ws = _client(srv)
    ws.send_json({"id": 2, "publish": {"channel": "fmt:x", "data": [1, 2]}})
    assert _code(ws.reply(2)) == 107
    ws.send_json({"id": 3, "publish": {"channel": "fmt:x", "data": {"ok": True}}})
    assert ws.reply(3) == {"id": 3, "publish": {}}
    assert api_call(srv, "publish", {"channel": "fmt:x", "data": "str"})["error"]["code"] == 107
    assert api_call(srv, "publish", {"channel": "bin:x", "b64data": ""}) == {"result": {}}


def test_presence_permission_order(srv: ServerProcess) -> None:
    ws = _client(srv)
    ws.send_json({"id": 2, "presence": {"channel": "nopres:x"}})
    assert _code(ws.reply(2)) == 108  # presence off for the namespace
    ws.send_json({"id": 3, "presence": {"channel": "pres:x"}})
    assert _code(ws.reply(3)) == 103  # subscribers only
    ws.send_json({"id": 4, "presence_stats": {"channel": "nope:x"}})
    assert _code(ws.reply(4)) == 102


def test_history_permission_order(srv: ServerProcess) -> None:
    ws = _client(srv)
    ws.send_json({"id": 2, "history": {"channel": "nopres:x"}})
    assert _code(ws.reply(2)) == 108  # no history configured
    ws.send_json({"id": 3, "history": {"channel": "histlocked:x"}})
    assert _code(ws.reply(3)) == 103


def test_personal_channel_subscription(srv: ServerProcess) -> None:
    ws = _client(srv, "42")
    # The personal channel arrived in the connect reply's subs (checked via a duplicate).
    assert _code(_sub(ws, "personal:#42")) == 105
    assert api_call(srv, "publish", {"channel": "personal:#42", "data": {"note": 1}}) == {
        "result": {}
    }
    assert ws.push() == {"channel": "personal:#42", "pub": {"data": {"note": 1}}}
    anon = RawWebSocket(srv.host, srv.port).open()
    assert "subs" not in anon.connect()["connect"]  # anonymous users have none


def test_token_subs_claim(srv: ServerProcess) -> None:
    ws = RawWebSocket(srv.host, srv.port).open()
    token = make_token(
        SECRET,
        "5",
        3600,
        extra={
            "subs": {"subpub:room": {"data": {"welcome": True}, "info": {"role": "mod"}}},
            "channels": ["ignored"],  # `subs` takes precedence over `channels`
        },
    )
    result = ws.connect(token)["connect"]
    assert result["subs"]["subpub:room"] == {"data": {"welcome": True}}
    assert "ignored" not in result["subs"]
    reader = _client(srv, "6")
    _sub(reader, "subpub:room")
    ws.send_json({"id": 2, "publish": {"channel": "subpub:room", "data": {"hi": 1}}})
    assert ws.reply(2) == {"id": 2, "publish": {}}
    info = reader.push()["pub"]["info"]
    assert info["user"] == "5" and info["chan_info"] == {"role": "mod"}


def test_subscription_token_data_and_info(srv: ServerProcess) -> None:
    ws = _client(srv, "5")
    token = make_token(
        SECRET, "5", 600, extra={"channel": "$secret", "data": {"x": 1}, "info": {"i": 2}}
    )
    reply = _sub(ws, "$secret", token=token)["subscribe"]
    assert reply["data"] == {"x": 1} and reply["expires"] is True


def test_subscription_token_client_claim(srv: ServerProcess) -> None:
    ws = _client(srv, "5")
    token = make_token(SECRET, "5", 600, extra={"channel": "$c", "client": "someone-else"})
    ws.send_json({"id": 2, "subscribe": {"channel": "$c", "token": token}})
    assert ws.close_code() == 3500


def test_single_connection_personal_channel(make_server: Any) -> None:
    srv = make_server(
        {
            "client": {
                "subscribe_to_user_personal_channel": {"enabled": True, "single_connection": True}
            }
        }
    )
    first = _client(srv, "77")
    second = _client(srv, "77")
    assert first.close_code() == 3504
    assert _sub(second, "news") == {"id": 2, "subscribe": {}}
