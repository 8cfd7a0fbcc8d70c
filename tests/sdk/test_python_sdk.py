"""centrifuge-python 0.7.0 against a real server: the same scenarios as test_js_sdk.py.

pytest-asyncio is not a dependency: each test drives its own loop with `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from cent import ChannelsRequest, PublishRequest
from centrifuge import (
    ClientState,
    ReplyError,
    SubscriptionState,
    SubscriptionUnsubscribedError,
)

from tests.sdk.common import (
    PING_CONFIG,
    PING_SECONDS,
    bad_token,
    eventually,
    expired_token,
    token,
)
from tests.sdk.pysdk import (
    CONNECT_CALLED,
    ClientLog,
    SubLog,
    assert_stayed_connected,
    new_client,
    run,
)
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.sdk


def test_receives_publication_from_cent(server: ServerProcess, cent: Any) -> None:
    payload = {"text": "hello from cent", "n": 7, "nested": {"ok": True, "list": [1, "two"]}}
    log, sub_log = ClientLog(), SubLog()

    async def scenario(clients: list[Any]) -> None:
        client = new_client(server, log, token("alice"))
        clients.append(client)
        sub = client.new_subscription("chat:room", events=sub_log)
        await client.connect()
        await sub.subscribe()
        await sub.ready(5.0)
        await asyncio.to_thread(cent.publish, PublishRequest(channel="chat:room", data=payload))
        await eventually(lambda: len(sub_log.publications) >= 1, "the publication")
        await asyncio.sleep(0.2)  # a duplicate would show up by now
        assert client.state == ClientState.CONNECTED

    run(scenario, log, sub_log)
    assert_stayed_connected(log)
    assert log.errors == []
    assert sub_log.subscribed == ["chat:room"]
    assert sub_log.publications == [(payload, None)]


def test_client_publish_reaches_other_client_and_locked_is_denied(server: ServerProcess) -> None:
    receiver_log, sender_log = ClientLog(), ClientLog()
    receiver_sub_log, sender_sub_log = SubLog(), SubLog()
    payload = {"text": "hello from py", "n": 42}
    denied: list[ReplyError] = []

    async def scenario(clients: list[Any]) -> None:
        receiver = new_client(server, receiver_log, token("alice"))
        sender = new_client(server, sender_log, token("bob"))
        clients += [receiver, sender]
        receiver_sub = receiver.new_subscription("chat:py-publish", events=receiver_sub_log)
        sender_sub = sender.new_subscription("chat:py-publish", events=sender_sub_log)
        for client, sub in ((receiver, receiver_sub), (sender, sender_sub)):
            await client.connect()
            await sub.subscribe()
            await sub.ready(5.0)
        await sender_sub.publish(payload)
        await eventually(lambda: len(receiver_sub_log.publications) >= 1, "the publication")
        with pytest.raises(ReplyError) as exc_info:
            await sender.publish("locked:py", {"text": "nope"})
        denied.append(exc_info.value)
        await asyncio.sleep(0.2)
        assert sender.state == receiver.state == ClientState.CONNECTED

    run(scenario, receiver_log, sender_log, receiver_sub_log, sender_sub_log)
    assert receiver_sub_log.publications == [(payload, (sender_log.connected[0], "bob"))]
    assert denied[0].code == 103
    assert denied[0].message == "permission denied"
    assert_stayed_connected(receiver_log)
    assert_stayed_connected(sender_log)


def test_unsubscribe_stops_publications(server: ServerProcess, cent: Any) -> None:
    channel = "chat:py-unsub"
    log, sub_log = ClientLog(), SubLog()
    remaining: list[dict[str, Any]] = []

    async def scenario(clients: list[Any]) -> None:
        client = new_client(server, log, token("alice"))
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
    assert sub_log.publications == [({"seq": 1}, None)]
    assert_stayed_connected(log)


def test_invalid_token_disconnects_with_3500(server: ServerProcess) -> None:
    log = ClientLog()
    final: list[Any] = []

    async def scenario(clients: list[Any]) -> None:
        client = new_client(server, log, bad_token("alice"))
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


def test_expired_token_is_refreshed_with_get_token(server: ServerProcess) -> None:
    log = ClientLog()
    calls: list[float] = []

    async def get_token() -> str:
        calls.append(time.monotonic())
        return token("alice")

    async def scenario(clients: list[Any]) -> None:
        client = new_client(server, log, expired_token("alice"), get_token=get_token)
        clients.append(client)
        await client.connect()
        await client.ready(6.0)
        await asyncio.sleep(0.3)
        assert client.state == ClientState.CONNECTED

    run(scenario, log)
    assert [(code, getattr(err, "code", None)) for code, err in log.errors] == [(13, 109)]
    assert len(calls) == 1
    assert len(log.connected) == 1
    assert log.disconnected == []


def test_pings_keep_connection_alive(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(PING_CONFIG)
    log = ClientLog()
    connected_for: list[float] = []

    async def scenario(clients: list[Any]) -> None:
        # py resets its no-ping timer only on a ping: with ping interval 2 s + 1 s delay it
        # reconnects ("no ping") within 3 s if the server stops pinging.
        client = new_client(srv, log, token("alice"), max_server_ping_delay=1.0)
        clients.append(client)
        await client.connect()
        await client.ready(5.0)
        started = time.monotonic()
        await asyncio.sleep(PING_SECONDS)
        connected_for.append(time.monotonic() - started)
        assert client.state == ClientState.CONNECTED

    run(scenario, log, timeout=PING_SECONDS + 10)
    assert connected_for[0] >= PING_SECONDS
    assert_stayed_connected(log)
    assert log.errors == []


def test_server_shutdown_makes_client_reconnect(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server()
    log, sub_log = ClientLog(), SubLog()
    exit_codes: list[int] = []
    final: list[Any] = []

    async def scenario(clients: list[Any]) -> None:
        client = new_client(srv, log, token("alice"))
        clients.append(client)
        sub = client.new_subscription("chat:py-shutdown", events=sub_log)
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


def test_unknown_namespace_subscription_fails_with_102(server: ServerProcess) -> None:
    log, sub_log = ClientLog(), SubLog()

    async def scenario(clients: list[Any]) -> None:
        client = new_client(server, log, token("alice"))
        clients.append(client)
        sub = client.new_subscription("nope:room", events=sub_log)
        await client.connect()
        await sub.subscribe()
        with pytest.raises(SubscriptionUnsubscribedError):
            await sub.ready(5.0)
        await asyncio.sleep(0.5)  # a resubscribe would show up as another on_subscribing
        assert sub.state == SubscriptionState.UNSUBSCRIBED
        assert client.state == ClientState.CONNECTED

    run(scenario, log, sub_log)
    assert sub_log.unsubscribed == [(102, "unknown channel")]
    assert sub_log.subscribed == []
    assert sub_log.subscribing == [(0, "subscribe called")]
    assert_stayed_connected(log)
