"""JSON vs Protobuf: push encoding, command decoding, and a hub broadcast per encoding.

Also the issue-6 decision: our hand-written Protobuf codec against upb (google protobuf's C
implementation, through the generated classes centrifuge-python ships; a reference here only,
the server never imports them). The hub benchmark uses no-op transports, so it measures the
per-publication encode plus the per-subscriber enqueue and flush, not socket writes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from centrifuge.protocol import client_pb2
from msgspec import Raw

from benchmarks.conftest import Benchmark
from centrifugo_fast.core.fanout import FlushScheduler, Writer
from centrifugo_fast.core.hub import Hub, PushEncoder
from centrifugo_fast.engine.types import ClientInfo, Publication
from centrifugo_fast.protocol.codec import Codec
from centrifugo_fast.protocol.codec_json import JSON
from centrifugo_fast.protocol.codec_protobuf import PROTOBUF, encode_delimited
from centrifugo_fast.protocol.deflate import DeflateParams
from centrifugo_fast.protocol.frames import Opcode, encode_frame
from centrifugo_fast.protocol.messages import Command, PublishRequest, Push
from centrifugo_fast.transport.websocket import encode_message

PAYLOAD = b'{"text":"hello world, this is a chat message","user":"u42","n":12345}'
PUB = Publication(data=PAYLOAD, offset=17, info=ClientInfo("42", "c0ffee-client-id"))
CODECS: dict[str, Codec] = {"json": JSON, "protobuf": PROTOBUF}


@pytest.mark.parametrize("name", ["json", "protobuf"])
def test_encode_publication_push(benchmark: Benchmark, name: str) -> None:
    codec = CODECS[name]
    benchmark.group = "encode-push"
    benchmark(lambda: codec.encode_push(Push(channel="chat:1", pub=codec.publication(PUB))))


def test_encode_publication_push_upb(benchmark: Benchmark) -> None:
    benchmark.group = "encode-push"

    def encode() -> bytes:
        reply = client_pb2.Reply(
            push=client_pb2.Push(
                channel="chat:1",
                pub=client_pb2.Publication(
                    data=PAYLOAD,
                    offset=17,
                    info=client_pb2.ClientInfo(user="42", client="c0ffee-client-id"),
                ),
            )
        )
        body: bytes = reply.SerializeToString()
        return len(body).to_bytes(1, "big") + body

    benchmark(encode)


COMMANDS = {
    "json": b'{"id":7,"publish":{"channel":"chat:1","data":' + PAYLOAD + b"}}",
    "protobuf": encode_delimited(
        Command(id=7, publish=PublishRequest(channel="chat:1", data=Raw(PAYLOAD)))
    ),
}


@pytest.mark.parametrize("name", ["json", "protobuf"])
def test_decode_publish_command(benchmark: Benchmark, name: str) -> None:
    codec, data = CODECS[name], COMMANDS[name]
    benchmark.group = "decode-command"
    benchmark(codec.decode_commands, data)


def test_decode_publish_command_upb(benchmark: Benchmark) -> None:
    data = COMMANDS["protobuf"][1:]
    benchmark.group = "decode-command"

    def decode() -> Any:
        command = client_pb2.Command()
        command.ParseFromString(data)
        return command

    benchmark(decode)


class _Null:
    def write(self, data: bytes) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


class _Client:
    """Just enough of core.Client for Hub.add_subscription."""

    def __init__(self, client_id: str, writer: Writer) -> None:
        self.id = client_id
        self.writer = writer


@pytest.mark.parametrize("mix", ["json", "protobuf", "json-deflate", "half-and-half"])
def test_hub_broadcast_1000(benchmark: Benchmark, mix: str) -> None:
    callbacks: list[Callable[[], None]] = []
    scheduler = FlushScheduler(callbacks.append)
    hub = Hub()
    deflate = DeflateParams(level=1, min_size=0, server_max_window_bits=15)
    keys = {
        "json": hub.register_encoding(
            "ws/json", PushEncoder(JSON, lambda p: encode_frame(Opcode.TEXT, p), False)
        ),
        "protobuf": hub.register_encoding(
            "ws/protobuf", PushEncoder(PROTOBUF, lambda p: encode_frame(Opcode.BINARY, p), False)
        ),
        "json-deflate": hub.register_encoding(
            "ws/json/deflate",
            PushEncoder(JSON, lambda p: encode_message(Opcode.TEXT, p, deflate), False),
        ),
    }
    for i in range(1000):
        name = mix if mix != "half-and-half" else ("json", "protobuf")[i % 2]
        writer = Writer(_Null(), scheduler, 1 << 20, keys[name], lambda r: None)
        hub.add_subscription("chat:1", _Client(f"c{i}", writer))  # type: ignore[arg-type]
    benchmark.group = "hub-broadcast-1000"

    def publish() -> None:
        hub.broadcast_publication("chat:1", PUB)
        while callbacks:
            callbacks.pop()()

    benchmark(publish)
