"""Node publication observers (the admin live tail's hook into core): delivery, isolation from
the hub's counts, and the broker subscription they hold."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from centrifugo_fast.config.schema import Config
from centrifugo_fast.core.node import Node
from centrifugo_fast.engine.types import Publication


async def _node() -> tuple[Node, list[tuple[str, str]]]:
    node = Node(Config())
    calls: list[tuple[str, str]] = []

    async def subscribe(channel: str) -> None:
        calls.append(("subscribe", channel))

    async def unsubscribe(channel: str) -> None:
        calls.append(("unsubscribe", channel))

    node.broker.subscribe = subscribe  # type: ignore[method-assign]
    node.broker.unsubscribe = unsubscribe  # type: ignore[method-assign]
    return node, calls


def test_taps_get_publications_without_being_subscribers() -> None:
    async def scenario() -> None:
        node, calls = await _node()
        seen: list[tuple[str, bytes]] = []
        other: list[bytes] = []

        def tap(channel: str, pub: Publication) -> None:
            seen.append((channel, pub.data))

        def broken(channel: str, pub: Publication) -> None:
            raise RuntimeError("an observer bug must not reach the broker")

        await node.add_tap("news", broken)
        await node.add_tap("news", tap)
        await node.add_tap("sport", lambda _c, pub: other.append(pub.data))
        assert calls == [("subscribe", "news"), ("subscribe", "sport")]
        assert sorted(node.subscribed_channels()) == ["news", "sport"]
        await node.publish("news", b'{"a":1}')
        assert seen == [("news", b'{"a":1}')] and other == []
        assert node.hub.num_channels == 0 and node.hub.num_subscriptions == 0
        assert list(node.hub.channels()) == []
        await node.remove_tap("news", broken)
        assert calls[-1] == ("subscribe", "sport")  # still observed by `tap`
        await node.remove_tap("news", tap)
        await node.remove_tap("news", tap)  # twice is harmless
        assert calls[-1] == ("unsubscribe", "news")
        await node.publish("news", b'{"a":2}')
        assert seen == [("news", b'{"a":1}')]

    asyncio.run(scenario())


def test_a_tap_keeps_the_broker_subscribed_when_the_last_subscriber_leaves() -> None:
    async def scenario() -> None:
        node, calls = await _node()
        client: Any = SimpleNamespace(id="c1")
        await node.begin_subscription("room", client)
        assert calls == [("subscribe", "room")]

        def tap(channel: str, pub: Publication) -> None:
            pass

        await node.add_tap("room", tap)
        assert calls == [("subscribe", "room")]  # already delivered here
        await node.cancel_subscription("room", client)
        assert calls == [("subscribe", "room")]  # the tap still needs it
        await node.remove_tap("room", tap)
        assert calls == [("subscribe", "room"), ("unsubscribe", "room")]

    asyncio.run(scenario())
