"""Node work that outlives its caller, in-process with engines that suspend like Redis:
the periodic presence update, presence removal and leave events of closed subscriptions
(awaited by shutdown), and the concurrent `broadcast` of the server API."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from centrifugo_fast.api.methods import ApiMethods, BroadcastRequest
from centrifugo_fast.codes import Disconnect
from centrifugo_fast.config import load_config
from centrifugo_fast.core.client import Client
from centrifugo_fast.core.control import (
    NODE_TTL,
    NodeAnnouncement,
    NodeInfo,
    encode as encode_control,
)
from centrifugo_fast.core.fanout import Writer
from centrifugo_fast.core.node import PRESENCE_UPDATE_BATCH, Node
from centrifugo_fast.engine.base import EngineUnavailable, PublishOptions
from centrifugo_fast.engine.memory import MemoryBroker, MemoryPresenceManager
from centrifugo_fast.engine.types import ClientInfo, PublishResult
from centrifugo_fast.protocol.codec_json import JSON
from centrifugo_fast.transport.client_ws import websocket_encoding_key

CONFIG: dict[str, Any] = {
    "client": {"insecure": True},
    "channel": {
        "namespaces": [
            {"name": "room", "presence": True, "join_leave": True},
            {"name": "hist", "history_size": 10, "history_ttl": "300s"},
            {"name": "boom"},
        ]
    },
}


def _config() -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.json"
        path.write_text(json.dumps(CONFIG))
        return load_config(path, environ={})[0]


class _Sink:
    def write(self, data: bytes) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class FakeTransport:
    """Keeps the replies a client writes directly."""

    name = "websocket"
    protocol_type = "json"
    unidirectional = False
    app_level_ping = False
    header_user = ""

    def __init__(self, node: Node) -> None:
        self.out: list[dict[str, Any]] = []
        self.closed: Disconnect | None = None
        self.writer = Writer(
            _Sink(), node.flush_scheduler, 1 << 20, websocket_encoding_key(node, JSON), print
        )

    def write(self, payload: bytes) -> None:
        self.out += [json.loads(line) for line in payload.split(b"\n")]

    def close(self, disconnect: Disconnect | None) -> None:
        self.closed = disconnect


class SlowPresence(MemoryPresenceManager):
    """Memory presence whose calls suspend like a network round trip (and may fail)."""

    def __init__(self) -> None:
        super().__init__()
        self.delay: float | None = None  # None: no suspension at all (memory-like)
        self.gate: asyncio.Event | None = None  # adds wait for it when set
        self.fail_adds = False
        self.fail_removes = False
        self.remove_delay = 0.0
        self.adds = 0
        self.inflight = 0
        self.max_inflight = 0
        self.steps = 0  # how often the in-flight count rose from zero

    async def add_presence(self, channel: str, client_id: str, info: ClientInfo) -> None:
        self.adds += 1
        if self.inflight == 0:
            self.steps += 1
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.delay is not None:
                await asyncio.sleep(self.delay)
            if self.gate is not None:
                await self.gate.wait()
            if self.fail_adds:
                raise EngineUnavailable("redis: connection refused")
            await super().add_presence(channel, client_id, info)
        finally:
            self.inflight -= 1

    async def remove_presence(self, channel: str, client_id: str, user: str) -> None:
        if self.remove_delay:
            await asyncio.sleep(self.remove_delay)
        if self.fail_removes:
            raise EngineUnavailable("redis: connection refused")
        await super().remove_presence(channel, client_id, user)


async def _until(check: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met"
        await asyncio.sleep(0.001)


async def _connect(node: Node, *channels: str) -> tuple[Client, FakeTransport]:
    transport = FakeTransport(node)
    client = Client(node, transport, JSON)
    client.handle_data(b'{"id":1,"connect":{}}')
    for i, channel in enumerate(channels):
        cmd = {"id": i + 2, "subscribe": {"channel": channel}}
        client.handle_data(json.dumps(cmd).encode())
    await _until(lambda: len(transport.out) == 1 + len(channels))
    assert all("error" not in reply for reply in transport.out), transport.out
    return client, transport


def _node() -> tuple[Node, SlowPresence]:
    node = Node(_config())
    presence = SlowPresence()
    node.presence_manager = presence
    return node, presence


# ---- presence update ----


def test_presence_update_covers_every_subscription_in_bounded_steps() -> None:
    async def scenario() -> None:
        node, presence = _node()
        count = 2 * PRESENCE_UPDATE_BATCH + 100
        clients = [(await _connect(node, "room:a"))[0] for _ in range(count)]
        extra, _ = await _connect(node, "room:b", "hist:x")  # hist: has no presence
        assert presence.adds == count + 1
        presence.adds = 0
        presence.delay = 0.005
        presence.steps = presence.max_inflight = 0
        await node.update_presence()
        assert presence.adds == count + 1  # every presence-enabled subscription, once
        assert presence.max_inflight <= PRESENCE_UPDATE_BATCH  # never all at once
        assert presence.steps >= 3
        assert set(await node.presence("room:a")) == {c.id for c in clients}
        assert set(await node.presence("room:b")) == {extra.id}

    asyncio.run(scenario())


def test_presence_update_yields_between_steps_when_nothing_suspends() -> None:
    async def scenario() -> None:
        node, presence = _node()
        for _ in range(PRESENCE_UPDATE_BATCH + 10):
            await _connect(node, "room:a")
        presence.adds = 0
        # The memory engine never suspends: the update still gives the loop a turn
        # after each step instead of walking every connection in one go.
        task = node.spawn(node.update_presence())
        assert task is not None and presence.adds == PRESENCE_UPDATE_BATCH
        await task
        assert presence.adds == PRESENCE_UPDATE_BATCH + 10

    asyncio.run(scenario())


def test_presence_added_while_unsubscribing_is_removed_again() -> None:
    async def scenario() -> None:
        node, presence = _node()
        client, transport = await _connect(node, "room:a")
        gate = presence.gate = asyncio.Event()
        update = node.spawn(node.update_presence())
        assert update is not None and presence.inflight == 1  # the add is in flight
        client.handle_data(b'{"id":9,"unsubscribe":{"channel":"room:a"}}')
        await _until(lambda: any(r.get("id") == 9 for r in transport.out))
        assert await node.presence("room:a") == {}  # removed...
        gate.set()
        await update  # ...then the late add lands, and is undone
        assert await node.presence("room:a") == {}

    asyncio.run(scenario())


def test_presence_update_failures_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        node, presence = _node()
        for _ in range(3):
            await _connect(node, "room:a", "room:b")
        presence.fail_adds = True
        presence.delay = 0.001
        with caplog.at_level(logging.WARNING, logger="centrifugo_fast"):
            await node.update_presence()
        warnings = [r.getMessage() for r in caplog.records if "presence update" in r.getMessage()]
        assert warnings == [
            "presence update: 6 of 6 entries not refreshed: redis: connection refused"
        ]

    asyncio.run(scenario())


def test_presence_update_runs_on_the_timer_wheel() -> None:
    async def scenario() -> None:
        config = _config()
        client = msgspec.structs.replace(config.client, presence_update_interval=0.2)
        node = Node(msgspec.structs.replace(config, client=client))
        presence = SlowPresence()
        node.presence_manager = presence
        await node.start()
        await _connect(node, "room:a")
        presence.adds = 0
        wheel_entries = len(node.timers)
        await asyncio.sleep(1.0)
        # Every 0.2 s, rounded up to the wheel's 0.1 s tick.
        assert 3 <= presence.adds <= 5, presence.adds
        assert len(node.timers) == wheel_entries  # one re-armed entry, nothing piles up
        await node.shutdown()
        adds = presence.adds
        await asyncio.sleep(0.3)
        assert presence.adds == adds  # stopped with the node
        node.timers.close()

    asyncio.run(scenario())


# ---- background work and shutdown ----


def test_shutdown_waits_for_presence_removal_before_closing_the_broker() -> None:
    async def scenario() -> None:
        node, presence = _node()
        await _connect(node, "room:a")
        await _connect(node, "room:a")
        presence.remove_delay = 0.1
        order: list[str] = []
        close = node.broker.close

        async def closing() -> None:
            order.append(f"broker closed, {len(await presence.presence('room:a'))} present")
            await close()

        node.broker.close = closing  # type: ignore[method-assign]
        await node.shutdown()
        assert order == ["broker closed, 0 present"]

    asyncio.run(scenario())


def test_shutdown_waits_at_most_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        node, presence = _node()
        await _connect(node, "room:a")
        presence.remove_delay = 30.0
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="centrifugo_fast"):
            await node.shutdown(timeout=0.2)
        assert 0.15 < time.monotonic() - started < 1.0
        assert "1 engine operations unfinished after 0.2 s" in caplog.text

    asyncio.run(scenario())


def test_engine_errors_of_closed_subscriptions_are_logged_not_orphaned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unhandled: list[dict[str, Any]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: unhandled.append(ctx))
        node, presence = _node()
        leaves: list[str] = []
        publish_leave = node.broker.publish_leave

        async def leave(channel: str, info: ClientInfo) -> None:
            await asyncio.sleep(0.01)
            leaves.append(channel)
            raise EngineUnavailable("redis: connection refused")

        node.broker.publish_leave = leave  # type: ignore[method-assign]
        client, _ = await _connect(node, "room:a", "room:b")
        presence.remove_delay = 0.01
        presence.fail_removes = True
        with caplog.at_level(logging.WARNING, logger="centrifugo_fast"):
            client.disconnect(None)
            await node.shutdown()
        node.broker.publish_leave = publish_leave  # type: ignore[method-assign]
        # Both steps ran for both channels despite the failures, and each was logged.
        assert sorted(leaves) == ["room:a", "room:b"]
        assert caplog.text.count("not removed: redis: connection refused") == 2
        assert caplog.text.count("not sent: redis: connection refused") == 2

        async def fails_later() -> None:
            await asyncio.sleep(0)
            raise EngineUnavailable("gone")

        task = node.spawn(fails_later(), "something")
        assert task is not None
        await asyncio.wait([task])
        assert "something: engine unavailable: gone" in caplog.text

    asyncio.run(scenario())
    gc.collect()
    assert unhandled == []


# ---- broadcast ----


class SlowBroker(MemoryBroker):
    """Publishes after a per-channel delay (first channels slowest); `boom:*` fails."""

    delays: dict[str, float] = {}
    inflight = 0
    max_inflight = 0

    async def publish(self, channel: str, data: bytes, opts: PublishOptions) -> PublishResult:
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            await asyncio.sleep(self.delays.get(channel, 0.0))
            if channel.startswith("boom:"):
                raise EngineUnavailable("redis: connection refused")
            return await super().publish(channel, data, opts)
        finally:
            self.inflight -= 1


def test_broadcast_is_concurrent_and_keeps_the_request_order() -> None:
    async def scenario() -> None:
        node = Node(_config())
        broker = SlowBroker(node, node.loop, 3600.0)
        node.broker = broker
        channels = [f"hist:{i}" for i in range(8)]
        for i, channel in enumerate(channels):
            for _ in range(i):  # hist:i is at offset i before the broadcast
                await node.publish(channel, b"{}")
        broker.delays = {channel: 0.02 * (8 - i) for i, channel in enumerate(channels)}
        request = BroadcastRequest(
            channels=[channels[0], "", "nope:x", "boom:1", *channels[1:]],
            data=json.dumps({"x": 1}).encode(),  # type: ignore[arg-type]
        )
        started = time.monotonic()
        result = await ApiMethods(node).broadcast(request)
        took = time.monotonic() - started
        assert broker.max_inflight >= 8
        assert took < 0.3  # the slowest one (0.16 s), not the sum (0.72 s)
        answers = [
            (r.result.offset if r.result else None, r.error.code if r.error else None)
            for r in result.responses
        ]
        assert answers == [
            (1, None),
            (None, 107),  # empty channel: bad request
            (None, 102),  # unknown namespace
            (None, 100),  # engine failure: internal, for this channel only
            *[(i + 1, None) for i in range(1, 8)],
        ]

    asyncio.run(scenario())


# ---- emulation forwarding ----


def test_emulation_data_reaches_only_the_named_node() -> None:
    async def scenario() -> None:
        node = Node(_config())
        received: list[tuple[str, bytes]] = []
        node.on_emulation(lambda session, data: received.append((session, data)))
        await node.forward_emulation(node.id, "s1", b'{"id":2,"ping":{}}')
        await node.forward_emulation("another-node", "s2", b"{}")  # nobody, on memory
        assert received == [("s1", b'{"id":2,"ping":{}}')]

    asyncio.run(scenario())


def test_node_alive_follows_announcements() -> None:
    async def scenario() -> None:
        node = Node(_config())
        other = NodeInfo("n2", "two", "v", 0, 0, 0, 0, 0)
        assert node.node_alive(node.id) and not node.node_alive("n2")
        node.handle_control(encode_control(NodeAnnouncement(info=other)))
        assert node.node_alive("n2")
        node.nodes["n2"] = (other, node.loop.time() - NODE_TTL - 1)  # announced too long ago
        assert not node.node_alive("n2")

    asyncio.run(scenario())
