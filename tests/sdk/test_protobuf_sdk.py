"""The Protobuf protocol through the real SDKs: centrifuge-js 5.8.0's Protobuf build
(`centrifuge/build/protobuf`, scripts `tests/sdk/js/protobuf_*.js`) and centrifuge-python 0.7.0
with `use_protobuf=True`. Both select Protobuf with the `centrifuge-protobuf` subprotocol.

In Protobuf mode payloads are raw bytes. A publication made through the server API carries the
bytes of the JSON value exactly as the API request held it; cent 5.2.0 posts with requests'
`json=`, i.e. `json.dumps(body, allow_nan=False)` with the default separators and ASCII escapes,
so the bytes are `cent_bytes(payload)` below. The js scripts print payloads as hex.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cent import ChannelsRequest, PublishRequest
from centrifuge import ClientState, ReplyError, SubscriptionState

from tests.sdk.common import (
    PING_CONFIG,
    PING_SECONDS,
    bad_token,
    cent_client,
    eventually,
    token,
    wait_for_clients,
    wait_for_subscriber,
)
from tests.sdk.jsrun import run_script, run_script_with
from tests.sdk.pysdk import CONNECT_CALLED, ClientLog, SubLog, new_client, run
from tests.serverproc import API_KEY, BASE_CONFIG, ServerProcess, running_server

pytestmark = pytest.mark.sdk

#: A namespace with presence and history that subscribers may publish into and query.
ROOM_NAMESPACE: dict[str, Any] = {
    "name": "room",
    "presence": True,
    "history_size": 10,
    "history_ttl": "300s",
    "allow_subscribe_for_client": True,
    "allow_publish_for_subscriber": True,
    "allow_presence_for_subscriber": True,
    "allow_history_for_subscriber": True,
}
ROOM_CONFIG: dict[str, Any] = {
    "channel": {"namespaces": [*BASE_CONFIG["channel"]["namespaces"], ROOM_NAMESPACE]}
}

#: What cent publishes: nesting, a non-ASCII string (sent as `\u` escapes) and spaces to keep.
CENT_PAYLOAD: dict[str, Any] = {
    "text": "hello from cent",
    "n": 7,
    "nested": {"ok": True, "list": [1, "two"]},
    "unicode": "héllo ✓",
}
#: Arbitrary binary data: every byte value, framed by 0x00 and 0xff, plus invalid UTF-8.
BINARY = b"\x00\xff" + bytes(range(256)) + b"\xc3\x28\xff\x00"
#: Publications for the history check (the first is a lone 0x00 byte).
HISTORY_PAYLOADS = [b"\x00", b"\xff\x00\xfe", b"third \x00 one"]


def cent_bytes(value: Any) -> bytes:
    """The bytes cent 5.2.0 sends for `value` as publication data (requests' `json=`)."""
    return json.dumps(value, allow_nan=False).encode()


def pub(data: bytes, info: dict[str, str] | None = None) -> dict[str, Any]:
    """A publication as the js scripts report it."""
    return {"dataHex": data.hex(), "info": info}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """The base test server plus the `room` presence/history namespace."""
    yield from running_server(ROOM_CONFIG)


def assert_js_stayed_connected(result: dict[str, Any]) -> None:
    """One `connect called` transition, a connection, and no disconnect or reconnect."""
    assert result["connecting"] == [{"code": 0, "reason": "connect called"}]
    assert result["disconnected"] == []
    assert result["errors"] == []
    assert len(result["connected"]) == 1
    client_id = result["connected"][0]["client"]
    assert isinstance(client_id, str) and len(client_id) >= 8
    assert result["connected"][0]["transport"] == "websocket"


def assert_py_stayed_connected(log: ClientLog) -> None:
    assert log.connecting == [CONNECT_CALLED]
    assert log.disconnected == []
    assert log.errors == []
    assert len(log.connected) == 1


def pb_client(server: ServerProcess, log: ClientLog, jwt: str, **options: Any) -> Any:
    """A centrifuge-python client in Protobuf mode."""
    return new_client(server, log, jwt, use_protobuf=True, **options)


# --- centrifuge-js, Protobuf build ------------------------------------------------------------


def test_js_receives_cent_publication_as_raw_bytes(node: str, server: ServerProcess) -> None:
    channel = "chat:pb-js-cent"

    def publish(proc: subprocess.Popen[str]) -> None:
        with cent_client(server) as cent:
            wait_for_subscriber(cent, channel, alive=lambda: proc.poll() is None)
            cent.publish(PublishRequest(channel=channel, data=CENT_PAYLOAD))

    args = {"url": server.ws_url, "token": token("alice"), "channel": channel}
    result = run_script_with(node, "protobuf_pubsub.js", args, publish)
    assert result["ws"] == {"requested": "centrifuge-protobuf", "negotiated": "centrifuge-protobuf"}
    assert_js_stayed_connected(result)
    assert result["subscribed"] == [{"channel": channel}]
    assert result["subErrors"] == []
    assert result["publications"] == [pub(cent_bytes(CENT_PAYLOAD))]
    assert result["finalState"] == "connected"


def test_js_binary_publish_reaches_other_client_and_locked_is_denied(
    node: str, server: ServerProcess
) -> None:
    args = {
        "url": server.ws_url,
        "token-a": token("alice"),
        "token-b": token("bob"),
        "channel": "chat:pb-js-publish",
        "denied-channel": "locked:pb-js",
        "data-hex": BINARY.hex(),
    }
    result = run_script(node, "protobuf_client_publish.js", args)
    assert "publishError" not in result
    assert result["publishResult"] == {}
    sender_id = result["sender"]["connected"][0]["client"]
    expected = [pub(BINARY, {"client": sender_id, "user": "bob"})]
    assert result["receiver"]["publications"] == expected
    assert result["sender"]["publications"] == expected
    assert result["deniedError"] == {"code": 103, "message": "permission denied"}
    assert "deniedResult" not in result
    for side in ("sender", "receiver"):
        assert_js_stayed_connected(result[side])
    assert result["senderState"] == result["receiverState"] == "connected"


def test_js_unsubscribe_stops_publications(node: str, server: ServerProcess) -> None:
    channel = "chat:pb-js-unsub"
    args = {
        "url": server.ws_url,
        "token": token("alice"),
        "channel": channel,
        "api": server.api_url,
        "api-key": API_KEY,
    }
    result = run_script(node, "protobuf_unsubscribe.js", args)
    assert_js_stayed_connected(result)
    assert result["publishBefore"] == {"result": {}}
    assert result["unsubscribed"] == [{"code": 0, "reason": "unsubscribe called"}]
    assert result["channelsAfter"] == {"result": {"channels": {}}}
    assert result["publishAfter"] == {"result": {}}
    # The script's API call posts JSON.stringify(body): the data is the compact {"seq":1}.
    assert result["publications"] == [pub(b'{"seq":1}')]
    assert result["subStateAfter"] == "unsubscribed"
    assert result["clientStateAfter"] == "connected"


def test_js_invalid_token_disconnects_with_3500(node: str, server: ServerProcess) -> None:
    result = run_script(
        node, "protobuf_bad_token.js", {"url": server.ws_url, "token": bad_token("alice")}
    )
    assert result["disconnected"] == [{"code": 3500, "reason": "invalid token"}]
    assert result["connecting"] == [{"code": 0, "reason": "connect called"}]
    assert result["connected"] == []
    assert result["states"] == ["connecting", "disconnected"]
    assert result["finalState"] == "disconnected"


def test_js_pings_keep_connection_alive(
    node: str, make_server: Callable[..., ServerProcess]
) -> None:
    srv = make_server(PING_CONFIG)
    duration_ms = int(PING_SECONDS * 1000)
    args = {
        "url": srv.ws_url,
        "token": token("alice"),
        "duration": str(duration_ms),
        "max-ping-delay": "1000",
    }
    result = run_script(node, "protobuf_ping.js", args, timeout=PING_SECONDS + 15)
    assert_js_stayed_connected(result)
    assert result["connectedForMs"] >= duration_ms
    counters = result["counters"]
    assert counters["pings"] >= 3
    assert counters["pongs"] == counters["pings"]
    assert counters["textFrames"] == 0
    assert result["finalState"] == "connected"


def test_js_server_shutdown_makes_client_reconnect(
    node: str, make_server: Callable[..., ServerProcess]
) -> None:
    srv = make_server()
    channel = "chat:pb-js-shutdown"
    exit_codes: list[int] = []

    def stop(proc: subprocess.Popen[str]) -> None:
        with cent_client(srv) as cent:
            wait_for_subscriber(cent, channel, alive=lambda: proc.poll() is None)
        exit_codes.append(srv.stop())

    args = {"url": srv.ws_url, "token": token("alice"), "channel": channel}
    result = run_script_with(node, "protobuf_shutdown.js", args, stop)
    assert exit_codes == [0]
    assert result["connecting"][:2] == [
        {"code": 0, "reason": "connect called"},
        {"code": 3001, "reason": "shutdown"},
    ]
    assert result["disconnected"] == []
    assert result["finalState"] == "connecting"
    assert result["subFinalState"] == "subscribing"
    assert result["unsubscribed"] == []


def test_js_json_and_protobuf_clients_get_one_cent_publication(
    node: str, server: ServerProcess
) -> None:
    channel = "chat:pb-mixed"

    def publish(proc: subprocess.Popen[str]) -> None:
        with cent_client(server) as cent:
            wait_for_clients(cent, channel, 2, timeout=10.0)
            assert proc.poll() is None
            cent.publish(PublishRequest(channel=channel, data=CENT_PAYLOAD))

    args = {
        "url": server.ws_url,
        "token-json": token("jason"),
        "token-pb": token("proto"),
        "channel": channel,
    }
    result = run_script_with(node, "protobuf_mixed.js", args, publish)
    assert result["json"]["publications"] == [{"data": CENT_PAYLOAD, "info": None}]
    assert result["protobuf"]["publications"] == [pub(cent_bytes(CENT_PAYLOAD))]
    for side in ("json", "protobuf"):
        assert_js_stayed_connected(result[side])
        assert result[side]["subscribed"] == [{"channel": channel}]
    assert result["jsonState"] == result["protobufState"] == "connected"


def test_js_presence_and_history(node: str, server: ServerProcess) -> None:
    args = {
        "url": server.ws_url,
        "token-a": token("a"),
        "token-b": token("b"),
        "channel": "room:pb-js",
        "data-hex": ",".join(data.hex() for data in HISTORY_PAYLOADS),
    }
    result = run_script(node, "protobuf_presence_history.js", args)
    id_a, id_b = result["ids"]["a"], result["ids"]["b"]
    assert id_a != id_b
    both = {"clients": {id_a: {"client": id_a, "user": "a"}, id_b: {"client": id_b, "user": "b"}}}
    assert result["presenceA"] == both
    assert result["presenceB"] == both

    info_b = {"client": id_b, "user": "b"}
    assert result["a"]["publications"] == [pub(data, info_b) for data in HISTORY_PAYLOADS]
    history = result["history"]
    assert history["publications"] == [
        {"dataHex": data.hex(), "offset": offset, "info": info_b}
        for offset, data in enumerate(HISTORY_PAYLOADS, start=1)
    ]
    assert history["offset"] == len(HISTORY_PAYLOADS)
    assert isinstance(history["epoch"], str) and history["epoch"] != ""
    for side in ("a", "b"):
        assert_js_stayed_connected(result[side])
        assert result[side]["subErrors"] == []
    assert result["finalState"] == "connected"


# --- centrifuge-python, use_protobuf=True -----------------------------------------------------


def test_py_receives_cent_publication_as_raw_bytes(server: ServerProcess, cent: Any) -> None:
    channel = "chat:pb-py-cent"
    log, sub_log = ClientLog(), SubLog()
    negotiated: list[str | None] = []

    async def scenario(clients: list[Any]) -> None:
        client = pb_client(server, log, token("alice"))
        clients.append(client)
        sub = client.new_subscription(channel, events=sub_log)
        await client.connect()
        await sub.subscribe()
        await sub.ready(5.0)
        # The SDK's websockets connection: the server echoed the subprotocol py asked for.
        negotiated.append(client._conn.subprotocol)
        request = PublishRequest(channel=channel, data=CENT_PAYLOAD)
        await asyncio.to_thread(cent.publish, request)
        await eventually(lambda: len(sub_log.publications) >= 1, "the publication")
        await asyncio.sleep(0.2)  # a duplicate would show up by now
        assert client.state == ClientState.CONNECTED

    run(scenario, log, sub_log)
    assert negotiated == ["centrifuge-protobuf"]
    assert_py_stayed_connected(log)
    assert sub_log.subscribed == [channel]
    assert sub_log.publications == [(cent_bytes(CENT_PAYLOAD), None)]


def test_py_binary_publish_reaches_other_client_and_locked_is_denied(
    server: ServerProcess,
) -> None:
    channel = "chat:pb-py-publish"
    receiver_log, sender_log = ClientLog(), ClientLog()
    receiver_sub_log, sender_sub_log = SubLog(), SubLog()
    denied: list[ReplyError] = []

    async def scenario(clients: list[Any]) -> None:
        receiver = pb_client(server, receiver_log, token("alice"))
        sender = pb_client(server, sender_log, token("bob"))
        clients += [receiver, sender]
        receiver_sub = receiver.new_subscription(channel, events=receiver_sub_log)
        sender_sub = sender.new_subscription(channel, events=sender_sub_log)
        for client, sub in ((receiver, receiver_sub), (sender, sender_sub)):
            await client.connect()
            await sub.subscribe()
            await sub.ready(5.0)
        await sender_sub.publish(BINARY)
        await eventually(lambda: len(receiver_sub_log.publications) >= 1, "the publication")
        with pytest.raises(ReplyError) as exc_info:
            await sender.publish("locked:pb-py", b"\x00\xff")
        denied.append(exc_info.value)
        await asyncio.sleep(0.2)
        assert sender.state == receiver.state == ClientState.CONNECTED

    run(scenario, receiver_log, sender_log, receiver_sub_log, sender_sub_log)
    expected = [(BINARY, (sender_log.connected[0], "bob"))]
    assert receiver_sub_log.publications == expected
    assert sender_sub_log.publications == expected
    assert (denied[0].code, denied[0].message) == (103, "permission denied")
    assert_py_stayed_connected(receiver_log)
    assert_py_stayed_connected(sender_log)


def test_py_unsubscribe_stops_publications(server: ServerProcess, cent: Any) -> None:
    channel = "chat:pb-py-unsub"
    log, sub_log = ClientLog(), SubLog()
    remaining: list[dict[str, Any]] = []

    async def scenario(clients: list[Any]) -> None:
        client = pb_client(server, log, token("alice"))
        clients.append(client)
        sub = client.new_subscription(channel, events=sub_log)
        await client.connect()
        await sub.subscribe()
        await sub.ready(5.0)
        await asyncio.to_thread(cent.publish, PublishRequest(channel=channel, data={"seq": 1}))
        await eventually(lambda: len(sub_log.publications) >= 1, "the first publication")
        await sub.unsubscribe()
        await eventually(lambda: len(sub_log.unsubscribed) >= 1, "on_unsubscribed")
        await asyncio.sleep(0.3)
        channels = await asyncio.to_thread(cent.channels, ChannelsRequest(pattern=channel))
        remaining.append(channels.channels)
        await asyncio.to_thread(cent.publish, PublishRequest(channel=channel, data={"seq": 2}))
        await asyncio.sleep(0.7)
        assert sub.state == SubscriptionState.UNSUBSCRIBED
        assert client.state == ClientState.CONNECTED

    run(scenario, log, sub_log)
    assert sub_log.unsubscribed == [(0, "unsubscribe called")]
    assert remaining == [{}]
    assert sub_log.publications == [(cent_bytes({"seq": 1}), None)]
    assert_py_stayed_connected(log)


def test_py_invalid_token_disconnects_with_3500(server: ServerProcess) -> None:
    log = ClientLog()
    final: list[Any] = []

    async def scenario(clients: list[Any]) -> None:
        client = pb_client(server, log, bad_token("alice"))
        clients.append(client)
        await client.connect()
        await eventually(lambda: len(log.disconnected) >= 1, "on_disconnected")
        await asyncio.sleep(1.5)  # a reconnect would show up as another on_connecting
        final.append(client.state)

    run(scenario, log)
    assert log.disconnected == [(3500, "invalid token")]
    assert log.connecting == [CONNECT_CALLED]
    assert log.connected == []
    assert final == [ClientState.DISCONNECTED]


def test_py_pings_keep_connection_alive(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(PING_CONFIG)
    log = ClientLog()
    connected_for: list[float] = []

    async def scenario(clients: list[Any]) -> None:
        # py resets its no-ping timer only on a ping: it reconnects within 3 s without pings.
        client = pb_client(srv, log, token("alice"), max_server_ping_delay=1.0)
        clients.append(client)
        await client.connect()
        await client.ready(5.0)
        started = time.monotonic()
        await asyncio.sleep(PING_SECONDS)
        connected_for.append(time.monotonic() - started)
        assert client.state == ClientState.CONNECTED

    run(scenario, log, timeout=PING_SECONDS + 10)
    assert connected_for[0] >= PING_SECONDS
    assert_py_stayed_connected(log)


def test_py_server_shutdown_makes_client_reconnect(
    make_server: Callable[..., ServerProcess],
) -> None:
    srv = make_server()
    log, sub_log = ClientLog(), SubLog()
    exit_codes: list[int] = []
    final: list[Any] = []

    async def scenario(clients: list[Any]) -> None:
        client = pb_client(srv, log, token("alice"))
        clients.append(client)
        sub = client.new_subscription("chat:pb-py-shutdown", events=sub_log)
        await client.connect()
        await sub.subscribe()
        await sub.ready(5.0)
        exit_codes.append(await asyncio.to_thread(srv.stop))
        await eventually(lambda: len(log.connecting) >= 2, "a reconnect after the shutdown")
        await asyncio.sleep(0.8)  # let it fail to reach the stopped server a few times
        final.extend([client.state, sub.state])

    run(scenario, log, sub_log)
    assert exit_codes == [0]
    assert log.connecting[:2] == [CONNECT_CALLED, (3001, "shutdown")]
    assert log.disconnected == []
    assert final == [ClientState.CONNECTING, SubscriptionState.SUBSCRIBING]
    assert sub_log.unsubscribed == []


def test_py_presence_and_history(server: ServerProcess) -> None:
    channel = "room:pb-py"
    log_a, log_b = ClientLog(), ClientLog()
    sub_log_a, sub_log_b = SubLog(), SubLog()
    seen: dict[str, Any] = {}

    async def scenario(clients: list[Any]) -> None:
        a = pb_client(server, log_a, token("a"))
        b = pb_client(server, log_b, token("b"))
        clients += [a, b]
        sub_a = a.new_subscription(channel, events=sub_log_a)
        sub_b = b.new_subscription(channel, events=sub_log_b)
        for client, sub in ((a, sub_a), (b, sub_b)):
            await client.connect()
            await sub.subscribe()
            await sub.ready(5.0)
        for data in HISTORY_PAYLOADS:
            await b.publish(channel, data)
        count = len(HISTORY_PAYLOADS)
        await eventually(lambda: len(sub_log_a.publications) >= count, "the publications")
        seen["presence_a"] = await sub_a.presence()
        seen["presence_b"] = await sub_b.presence()
        seen["history"] = await sub_a.history(limit=10)
        assert a.state == b.state == ClientState.CONNECTED

    run(scenario, log_a, log_b, sub_log_a, sub_log_b)
    id_a, id_b = log_a.connected[0], log_b.connected[0]
    assert id_a != id_b
    for key in ("presence_a", "presence_b"):
        clients = seen[key].clients
        assert {cid: (info.client, info.user) for cid, info in clients.items()} == {
            id_a: (id_a, "a"),
            id_b: (id_b, "b"),
        }
    assert sub_log_a.publications == [(data, (id_b, "b")) for data in HISTORY_PAYLOADS]
    history = seen["history"]
    pubs = [(p.data, int(p.offset), (p.info.client, p.info.user)) for p in history.publications]
    assert pubs == [
        (data, offset, (id_b, "b")) for offset, data in enumerate(HISTORY_PAYLOADS, start=1)
    ]
    assert int(history.offset) == len(HISTORY_PAYLOADS)
    assert isinstance(history.epoch, str) and history.epoch != ""
    assert_py_stayed_connected(log_a)
    assert_py_stayed_connected(log_b)
