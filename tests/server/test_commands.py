"""Client protocol commands over a real socket: replies, errors and pushes (JSON)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import API_KEY, SECRET, ServerProcess, api_call
from tests.wsclient import RawWebSocket


def _connected(server: ServerProcess, user: str = "u1", **claims: Any) -> RawWebSocket:
    ws = RawWebSocket(server.host, server.port).open()
    reply = ws.connect(make_token(SECRET, user, 3600, extra=claims or None))
    assert "connect" in reply, reply
    return ws


def _subscribe(ws: RawWebSocket, channel: str, cmd_id: int = 2) -> dict[str, Any]:
    ws.send_json({"id": cmd_id, "subscribe": {"channel": channel}})
    return ws.reply(cmd_id)


def test_connect_reply_shape(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    reply = ws.connect(make_token(SECRET, "42", 3600), name="js")
    result = reply["connect"]
    assert reply["id"] == 1
    assert len(result["client"]) == 36
    assert result["version"]
    assert result["ping"] == 25 and result["pong"] is True
    assert result["expires"] is True and 3590 <= result["ttl"] <= 3600
    assert "error" not in reply


def test_connect_without_exp_has_no_expiry_fields(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    result = ws.connect(make_token(SECRET, "42"))["connect"]
    assert "expires" not in result and "ttl" not in result


def test_connect_and_subscribe_in_one_frame(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    ws.send_json(
        {"id": 1, "connect": {"token": make_token(SECRET, "42", 60)}},
        {"id": 2, "subscribe": {"channel": "news", "flag": 1}},
    )
    assert "connect" in ws.reply(1)
    assert ws.reply(2) == {"id": 2, "subscribe": {}}


def test_publication_push_shape_and_raw_data(server: ServerProcess) -> None:
    ws = _connected(server)
    assert _subscribe(ws, "news") == {"id": 2, "subscribe": {}}
    raw = '{"channel":"news","data":{"b": [1, 2.50, "x"],\n "a": null},"tags":{"k":"v"}}'
    req = urllib.request.Request(
        server.api_url + "/publish", data=raw.encode(), headers={"X-API-Key": API_KEY}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.load(resp) == {"result": {}}
    opcode, payload = ws.recv_frame()
    assert opcode == 1
    # Data is passed byte-exact (key order, spacing, number form), minus raw newlines.
    assert payload == (
        b'{"push":{"channel":"news","pub":{"data":{"b": [1, 2.50, "x"], "a": null},'
        b'"tags":{"k":"v"}}}}'
    )


def test_client_publish_carries_publisher_info(server: ServerProcess) -> None:
    reader = _connected(server, "reader")
    writer = _connected(server, "writer", info={"name": "Ann"})
    _subscribe(reader, "chat:room")
    _subscribe(writer, "chat:room")
    writer.send_json({"id": 3, "publish": {"channel": "chat:room", "data": {"text": "hi"}}})
    assert writer.reply(3) == {"id": 3, "publish": {}}
    push = reader.push()
    assert push["channel"] == "chat:room"
    assert push["pub"]["data"] == {"text": "hi"}
    info = push["pub"]["info"]
    assert info["user"] == "writer" and info["conn_info"] == {"name": "Ann"}
    assert len(info["client"]) == 36


def test_publish_permissions(server: ServerProcess) -> None:
    ws = _connected(server)
    # chat allows publishing only for subscribers.
    ws.send_json({"id": 3, "publish": {"channel": "chat:x", "data": {}}})
    assert ws.reply(3)["error"] == {"code": 103, "message": "permission denied"}
    # open allows publishing for any authenticated client.
    ws.send_json({"id": 4, "publish": {"channel": "open:x", "data": {}}})
    assert ws.reply(4) == {"id": 4, "publish": {}}
    ws.send_json({"id": 5, "publish": {"channel": "nope:x", "data": {}}})
    assert ws.reply(5)["error"]["code"] == 102
    ws.send_json({"id": 6, "publish": {"channel": "open:x"}})
    assert ws.reply(6)["error"]["code"] == 107  # empty data
    ws.send_json({"id": 7, "publish": {"channel": "open:x", "data": None}})
    assert ws.reply(7)["error"]["code"] == 107  # null is absent


def test_subscribe_errors(server: ServerProcess) -> None:
    ws = _connected(server)
    assert _subscribe(ws, "nope:x")["error"] == {"code": 102, "message": "unknown channel"}
    assert _subscribe(ws, "locked:x", 3)["error"]["code"] == 103
    assert _subscribe(ws, "$private", 4)["error"]["code"] == 103
    assert _subscribe(ws, "x" * 256, 5)["error"]["code"] == 107
    assert _subscribe(ws, "news", 6) == {"id": 6, "subscribe": {}}
    assert _subscribe(ws, "news", 7)["error"] == {"code": 105, "message": "already subscribed"}


def test_channel_limit(make_server: Any) -> None:
    srv = make_server({"client": {"channel_limit": 2}})
    ws = _connected(srv)
    assert "subscribe" in _subscribe(ws, "a", 2)
    assert "subscribe" in _subscribe(ws, "b", 3)
    assert _subscribe(ws, "c", 4)["error"] == {"code": 106, "message": "limit exceeded"}


def test_empty_channel_subscribe_is_3501(server: ServerProcess) -> None:
    ws = _connected(server)
    ws.send_json({"id": 2, "subscribe": {"channel": ""}})
    assert ws.close_code() == 3501


def test_unknown_delta_type_is_3501(server: ServerProcess) -> None:
    ws = _connected(server)
    ws.send_json({"id": 2, "subscribe": {"channel": "news", "delta": "xdelta"}})
    assert ws.close_code() == 3501


def test_unsubscribe_stops_delivery(server: ServerProcess) -> None:
    ws = _connected(server)
    _subscribe(ws, "news")
    _subscribe(ws, "other", 3)
    ws.send_json({"id": 4, "unsubscribe": {"channel": "news"}})
    assert ws.reply(4) == {"id": 4, "unsubscribe": {}}
    ws.send_json({"id": 5, "unsubscribe": {"channel": "never-subscribed"}})
    assert ws.reply(5) == {"id": 5, "unsubscribe": {}}
    api_call(server, "publish", {"channel": "news", "data": {"n": 1}})
    api_call(server, "publish", {"channel": "other", "data": {"n": 2}})
    assert ws.push() == {"channel": "other", "pub": {"data": {"n": 2}}}


def test_presence_history_not_available_yet(server: ServerProcess) -> None:
    ws = _connected(server)
    for i, cmd in enumerate(
        ({"presence": {"channel": "news"}}, {"presence_stats": {"channel": "news"}}),
        start=2,
    ):
        ws.send_json({"id": i, **cmd})
        assert ws.reply(i)["error"] == {"code": 108, "message": "not available"}
    ws.send_json({"id": 9, "history": {"channel": "news", "limit": 10}})
    assert ws.reply(9)["error"]["code"] == 108
    ws.send_json({"id": 10, "presence": {"channel": "nope:x"}})
    assert ws.reply(10)["error"]["code"] == 102


def test_rpc_without_handler_is_108(server: ServerProcess) -> None:
    ws = _connected(server)
    ws.send_json({"id": 2, "rpc": {"method": "getUser", "data": {"id": 1}}})
    assert ws.reply(2)["error"] == {"code": 108, "message": "not available"}


def test_send_without_handler_closes_3508(server: ServerProcess) -> None:
    ws = _connected(server)
    ws.send_json({"send": {"data": {"typing": True}}})
    assert ws.close_code() == 3508


def test_token_channels_are_server_side_subscriptions(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    token = make_token(SECRET, "u9", 60, extra={"channels": ["news", "chat:9"]})
    reply = ws.connect(token)
    assert reply["connect"]["subs"] == {"news": {}, "chat:9": {}}
    assert _subscribe(ws, "news")["error"]["code"] == 105
    api_call(server, "publish", {"channel": "chat:9", "data": {"x": 1}})
    assert ws.push() == {"channel": "chat:9", "pub": {"data": {"x": 1}}}


def test_token_channel_in_unknown_namespace_fails_connect(server: ServerProcess) -> None:
    ws = RawWebSocket(server.host, server.port).open()
    reply = ws.connect(make_token(SECRET, "u9", 60, extra={"channels": ["nope:1"]}))
    assert reply["error"]["code"] == 102


def test_subscription_token_grants_private_channel(server: ServerProcess) -> None:
    ws = _connected(server, "u1")
    sub_token = make_token(SECRET, "u1", 60, extra={"channel": "$secret"})
    ws.send_json({"id": 2, "subscribe": {"channel": "$secret", "token": sub_token}})
    reply = ws.reply(2)["subscribe"]
    assert reply["expires"] is True and 50 <= reply["ttl"] <= 60


def test_subscription_token_for_another_user_closes_3500(server: ServerProcess) -> None:
    ws = _connected(server, "u1")
    sub_token = make_token(SECRET, "u2", 60, extra={"channel": "$secret"})
    ws.send_json({"id": 2, "subscribe": {"channel": "$secret", "token": sub_token}})
    assert ws.close_code() == 3500


def test_subscription_token_expired_is_109(server: ServerProcess) -> None:
    ws = _connected(server, "u1")
    token = make_token(SECRET, "u1", extra={"channel": "$s", "exp": int(time.time()) - 5})
    ws.send_json({"id": 2, "subscribe": {"channel": "$s", "token": token}})
    assert ws.reply(2)["error"]["code"] == 109


def test_refresh_extends_connection(server: ServerProcess) -> None:
    ws = _connected(server, "u1")
    ws.send_json({"id": 2, "refresh": {"token": make_token(SECRET, "u1", 7200)}})
    result = ws.reply(2)["refresh"]
    assert result["expires"] is True and 7190 <= result["ttl"] <= 7200


def test_refresh_for_another_user_closes_3500(server: ServerProcess) -> None:
    ws = _connected(server, "u1")
    ws.send_json({"id": 2, "refresh": {"token": make_token(SECRET, "u2", 7200)}})
    assert ws.close_code() == 3500


def test_refresh_with_expired_token_closes_3005(server: ServerProcess) -> None:
    ws = _connected(server, "u1")
    token = make_token(SECRET, "u1", extra={"exp": int(time.time()) - 5})
    ws.send_json({"id": 2, "refresh": {"token": token}})
    assert ws.close_code() == 3005


def test_sub_refresh(server: ServerProcess) -> None:
    ws = _connected(server, "u1")
    ws.send_json({"id": 2, "sub_refresh": {"channel": "news", "token": "x"}})
    assert ws.reply(2)["error"]["code"] == 103  # not subscribed
    token = make_token(SECRET, "u1", 60, extra={"channel": "$s"})
    ws.send_json({"id": 3, "subscribe": {"channel": "$s", "token": token}})
    ws.reply(3)
    ws.send_json({"id": 4, "sub_refresh": {"channel": "$s"}})
    assert ws.reply(4)["error"]["code"] == 107  # empty token
    fresh = make_token(SECRET, "u1", 600, extra={"channel": "$s"})
    ws.send_json({"id": 5, "sub_refresh": {"channel": "$s", "token": fresh}})
    result = ws.reply(5)["sub_refresh"]
    assert result["expires"] is True and 590 <= result["ttl"] <= 600


def test_anonymous_connect_when_allowed(make_server: Any) -> None:
    srv = make_server(
        {
            "client": {"allow_anonymous_connect_without_token": True},
            "channel": {
                "without_namespace": {
                    "allow_subscribe_for_client": True,
                    "allow_subscribe_for_anonymous": False,
                },
                "namespaces": [
                    {
                        "name": "pub",
                        "allow_subscribe_for_client": True,
                        "allow_subscribe_for_anonymous": True,
                    }
                ],
            },
        }
    )
    ws = RawWebSocket(srv.host, srv.port).open()
    assert "connect" in ws.connect()
    assert _subscribe(ws, "news")["error"]["code"] == 103
    assert _subscribe(ws, "pub:x", 3) == {"id": 3, "subscribe": {}}


def test_disallow_anonymous_connection_tokens(make_server: Any) -> None:
    srv = make_server({"client": {"disallow_anonymous_connection_tokens": True}})
    ws = RawWebSocket(srv.host, srv.port).open()
    ws.send_json({"id": 1, "connect": {"token": make_token(SECRET, "", 60)}})
    assert ws.close_code() == 3507
