"""Publications that arrive while a subscription reads its stream position (async engines).

The memory engine never suspends there, so these tests use a broker that does: while it
"talks to Redis", publications reach the hub. They must be held for the subscriber, merged
with the recovered ones (no duplicate, no gap) and delivered after the subscribe reply.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from centrifugo_fast.codes import Disconnect
from centrifugo_fast.config import load_config
from centrifugo_fast.core.client import Client
from centrifugo_fast.core.fanout import Writer
from centrifugo_fast.core.node import Node
from centrifugo_fast.engine.base import HistoryFilter
from centrifugo_fast.engine.memory import MemoryBroker
from centrifugo_fast.engine.types import Publication, StreamPosition
from centrifugo_fast.protocol.codec_json import JSON
from centrifugo_fast.transport.client_ws import websocket_encoding_key

CONFIG = {
    "client": {"insecure": True},
    "channel": {
        "namespaces": [
            {"name": "rec", "history_size": 100, "history_ttl": "300s", "force_recovery": True}
        ]
    },
}


class SlowBroker(MemoryBroker):
    """A memory broker whose history read suspends, like a network round trip."""

    during_read: list[Any] = []
    read_first = True

    async def history(
        self, channel: str, flt: HistoryFilter, meta_ttl: float
    ) -> tuple[list[Publication], StreamPosition]:
        result: tuple[list[Publication], StreamPosition] = ([], StreamPosition(0, ""))
        if self.read_first:
            result = await super().history(channel, flt, meta_ttl)
        for action in self.during_read:
            await action()
        self.during_read = []
        if not self.read_first:
            result = await super().history(channel, flt, meta_ttl)
        return result


class FrameSink:
    """The socket under the Writer: keeps the WebSocket frames the hub fanned out."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.frames.append(data)

    def get_write_buffer_size(self) -> int:
        return 0


class FakeTransport:
    """Collects what the client writes (replies directly, pushes via the Writer)."""

    name = "websocket"
    protocol_type = "json"
    unidirectional = False
    app_level_ping = False
    header_user = ""

    def __init__(self, node: Node) -> None:
        self.out: list[dict[str, Any]] = []
        self.closed: Disconnect | None = None
        self.sink = FrameSink()
        self.writer = Writer(
            self.sink, node.flush_scheduler, 1 << 20, websocket_encoding_key(node, JSON), print
        )

    def write(self, payload: bytes) -> None:
        self.out += [json.loads(line) for line in payload.split(b"\n")]

    def close(self, disconnect: Disconnect | None) -> None:
        self.closed = disconnect

    def decoded(self) -> list[dict[str, Any]]:
        """Direct writes, then the fanned-out frames (small frames: 2-byte header)."""
        return self.out + [json.loads(frame[2:]) for frame in self.sink.frames]


async def _scenario(read_first: bool, gap: bool = False) -> tuple[FakeTransport, Client]:
    node = Node(_config())
    broker = SlowBroker(node, node.loop, 3600.0)
    broker.read_first = read_first
    node.broker = broker
    for n in range(3):
        await node.publish("rec:x", json.dumps({"n": n}).encode())
    transport = FakeTransport(node)
    client = Client(node, transport, JSON)

    async def publish_more() -> None:
        await node.publish("rec:x", b'{"n":3}')
        await node.publish("rec:x", b'{"n":4}')
        if gap:
            node.hub.broadcast_publication("rec:x", Publication(b'{"n":99}', offset=9, epoch="x"))

    client.handle_data(b'{"id":1,"connect":{}}')
    await asyncio.sleep(0)
    broker.during_read = [publish_more]
    client.handle_data(
        b'{"id":2,"subscribe":{"channel":"rec:x","recover":true,"offset":1,"epoch":""}}'
    )
    for _ in range(5):
        await asyncio.sleep(0.01)
    await node.publish("rec:x", b'{"n":5}')
    await asyncio.sleep(0.01)
    return transport, client


def _config() -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.json"
        path.write_text(json.dumps(CONFIG))
        return load_config(path, environ={})[0]


def _offsets(transport: FakeTransport) -> tuple[list[int], list[int]]:
    items = transport.decoded()
    reply = next(item for item in items if item.get("id") == 2)["subscribe"]
    in_reply = [p["offset"] for p in reply.get("publications", [])]
    pushed = [item["push"]["pub"]["offset"] for item in items if "push" in item]
    return in_reply, pushed


def test_publications_during_recovery_are_merged_into_the_reply() -> None:
    # The stream is read first (offsets 2..3); 4 and 5 arrive while the "round trip" lasts.
    transport, _ = asyncio.run(_scenario(read_first=True))
    in_reply, pushed = _offsets(transport)
    assert in_reply == [2, 3, 4, 5]
    assert pushed == [6]  # the next live publication follows without a gap or repeat


def test_publications_seen_twice_are_not_repeated() -> None:
    # Publications land first, then the read sees them too: held copies are dropped.
    transport, _ = asyncio.run(_scenario(read_first=False))
    in_reply, pushed = _offsets(transport)
    assert in_reply == [2, 3, 4, 5]
    assert pushed == [6]


def test_a_gap_while_subscribing_is_insufficient_state() -> None:
    transport, _ = asyncio.run(_scenario(read_first=True, gap=True))
    assert transport.closed is not None and transport.closed.code == 3010
