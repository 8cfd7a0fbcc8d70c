"""RedisBroker and RedisPresenceManager in-process against a real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from centrifugo_fast.config.loader import load_config
from centrifugo_fast.engine.base import HistoryFilter, PublishOptions
from centrifugo_fast.engine.redis import RedisBroker, RedisPresenceManager, create_redis_engine
from centrifugo_fast.engine.types import ClientInfo, Publication, StreamPosition
from tests.redis.redisproc import RedisProcess


class Handler:
    """Records what the broker delivers."""

    def __init__(self) -> None:
        self.id = "node-under-test"
        self.events: list[tuple[str, str, Any]] = []
        self.control: list[bytes] = []
        self.channels: list[str] = []

    def handle_publication(self, channel: str, pub: Publication) -> None:
        self.events.append(("pub", channel, pub))

    def handle_join(self, channel: str, info: ClientInfo) -> None:
        self.events.append(("join", channel, info))

    def handle_leave(self, channel: str, info: ClientInfo) -> None:
        self.events.append(("leave", channel, info))

    def handle_control(self, data: bytes) -> None:
        self.control.append(data)

    def subscribed_channels(self) -> list[str]:
        return list(self.channels)


Engine = tuple[RedisBroker, RedisPresenceManager, Handler]


def _run(
    redis: RedisProcess,
    body: Callable[[Engine], Awaitable[None]],
    **options: Any,
) -> None:
    overrides = {
        "engine.type": "redis",
        "engine.redis.address": [redis.address],
        "engine.redis.prefix": "unit",
        **{f"engine.redis.{k}": v for k, v in options.items()},
    }
    config, _ = load_config(None, overrides=overrides)

    async def main() -> None:
        handler = Handler()
        broker, presence = create_redis_engine(config, handler, asyncio.get_running_loop())
        await broker.start()
        try:
            await body((broker, presence, handler))
        finally:
            await broker.close()

    asyncio.run(main())


async def _until(check: Callable[[], bool], timeout: float = 3.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met")


def _numsub(redis: RedisProcess, channel: str) -> int:
    reply = redis.cmd("PUBSUB", "NUMSUB", f"unit.client.{channel}")
    return int(reply[1])


def test_unsubscribe_is_deferred_and_cancelled_by_subscribe(redis_server: RedisProcess) -> None:
    async def body(engine: Engine) -> None:
        broker, _, _ = engine
        await broker.subscribe("d1")
        assert _numsub(redis_server, "d1") == 1
        await broker.unsubscribe("d1")
        await asyncio.sleep(0.5)
        await broker.subscribe("d1")  # interest is back before the delay ran out
        await asyncio.sleep(1.2)
        assert _numsub(redis_server, "d1") == 1
        await broker.unsubscribe("d1")
        await asyncio.sleep(0.6)
        assert _numsub(redis_server, "d1") == 1  # not before a second
        await _until(lambda: _numsub(redis_server, "d1") == 0)
        assert broker.subscribed() == []
        # Many subscribes in one loop turn: one SUBSCRIBE, all confirmed.
        await asyncio.gather(*(broker.subscribe(f"many{i}") for i in range(600)))
        assert len(broker.subscribed()) == 600

    _run(redis_server, body)


def test_resubscribes_after_the_connection_is_killed(redis_server: RedisProcess) -> None:
    async def body(engine: Engine) -> None:
        broker, _, handler = engine
        await broker.subscribe("r1")
        handler.channels = ["r1", "r2"]  # r2: known to the node only
        redis_server.cmd("CLIENT", "KILL", "TYPE", "pubsub")
        await _until(lambda: _numsub(redis_server, "r1") == 1 and _numsub(redis_server, "r2") == 1)
        await _until(lambda: broker.pubsub[0].available)
        await broker.publish("r2", b"{}", PublishOptions())
        await broker.publish_control(b"ctl")
        await _until(lambda: len(handler.events) == 1 and handler.control == [b"ctl"])

    _run(redis_server, body)


def test_control_for_one_node_reaches_only_that_node(redis_server: RedisProcess) -> None:
    async def body(engine: Engine) -> None:
        broker, _, handler = engine
        assert broker.node_id == handler.id  # the handler's id names the node's channel
        await broker.publish_control(b"for-another", "some-other-node")
        await broker.publish_control(b"for-me", handler.id)
        await broker.publish_control(b"for-all")
        await _until(lambda: len(handler.control) == 2)
        assert handler.control == [b"for-me", b"for-all"]
        names = redis_server.cmd("PUBSUB", "CHANNELS", "unit.node.*")
        assert names == [f"unit.node.{handler.id}".encode()]

    _run(redis_server, body)


def test_delta_idempotency_and_join_leave(redis_server: RedisProcess) -> None:
    async def body(engine: Engine) -> None:
        broker, _, handler = engine
        await broker.subscribe("x")
        opts = PublishOptions(history_size=3, history_ttl=60, use_delta=True)
        first = await broker.publish("x", b'{"a":1}', opts)
        second = await broker.publish("x", b'{"a":2}', opts)
        assert (first.offset, second.offset) == (1, 2)
        plain = PublishOptions(use_delta=True, idempotency_key="k")
        assert (await broker.publish("x", b"3", plain)).suppressed is False
        assert (await broker.publish("x", b"3", plain)).suppressed is True
        info = ClientInfo("u", "c")
        await broker.publish_join("x", info)
        await broker.publish_leave("x", info)
        await _until(lambda: len(handler.events) == 5)
        pubs = [e[2] for e in handler.events[:3]]
        assert [(p.offset, p.delta, p.data) for p in pubs] == [
            (1, True, b'{"a":1}'),
            (2, True, b'{"a":2}'),
            (0, True, b"3"),
        ]
        assert pubs[0].epoch == first.epoch
        assert [e[0] for e in handler.events[3:]] == ["join", "leave"]
        # Reverse history from the newest, and since an offset.
        pubs2, top = await broker.history("x", HistoryFilter(None, -1, True), 0)
        assert [p.offset for p in pubs2] == [2, 1] and top == StreamPosition(2, first.epoch)
        await broker.remove_history("x")
        pubs2, top = await broker.history("x", HistoryFilter(None, -1, False), 0)
        assert pubs2 == [] and top.offset == 2

    _run(redis_server, body)


def test_presence_with_user_mapping_and_expiry(redis_server: RedisProcess) -> None:
    async def body(engine: Engine) -> None:
        _, presence, _ = engine
        await presence.add_presence("p", "c1", ClientInfo("alice", "c1"))
        await presence.add_presence("p", "c2", ClientInfo("alice", "c2"))
        await presence.add_presence("p", "c3", ClientInfo("bob", "c3"))
        assert await presence.presence_stats("p") == (3, 2)
        await presence.remove_presence("p", "c1", "alice")
        assert await presence.presence_stats("p") == (2, 2)
        await presence.remove_presence("p", "c2", "alice")
        assert await presence.presence_stats("p") == (1, 1)
        assert set(await presence.presence("p")) == {"c3"}
        await asyncio.sleep(1.1)  # presence_ttl 1s without a refresh
        assert await presence.presence("p") == {}
        assert await presence.presence_stats("p") == (0, 0)

    _run(redis_server, body, presence_user_mapping=True, presence_ttl="1s")
