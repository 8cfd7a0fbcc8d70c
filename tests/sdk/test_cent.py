"""cent 5.2.0 (the official Python server API client) against a real server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from cent import (
    BroadcastRequest,
    BroadcastResult,
    CentApiResponseError,
    CentUnauthorizedError,
    ChannelsRequest,
    ChannelsResult,
    InfoRequest,
    InfoResult,
    PublishRequest,
    PublishResult,
)

from tests.sdk.common import cent_client, token
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.sdk


def test_publish_result(cent: Any) -> None:
    result = cent.publish(PublishRequest(channel="chat:cent", data={"text": "hi"}))
    assert isinstance(result, PublishResult)
    # No history in the base config: an empty result, which cent reads as offset 0, epoch "".
    assert (result.offset, result.epoch) == (0, "")


def test_publish_to_locked_namespace_is_allowed_for_the_api(cent: Any) -> None:
    # Namespace permissions apply to clients only; the server API may publish anywhere.
    assert isinstance(cent.publish(PublishRequest(channel="locked:x", data=1)), PublishResult)


def test_broadcast_result_with_a_per_channel_error(cent: Any) -> None:
    result = cent.broadcast(
        BroadcastRequest(channels=["chat:b1", "open:b2", "nope:b3"], data={"n": 1})
    )
    assert isinstance(result, BroadcastResult)
    assert len(result.responses) == 3
    for response in result.responses[:2]:
        assert response.error is None
        assert isinstance(response.result, PublishResult)
    error = result.responses[2].error
    assert error is not None
    assert (error.code, error.message) == (102, "unknown channel")


def test_info_result(cent: Any) -> None:
    result = cent.info(InfoRequest())
    assert isinstance(result, InfoResult)
    assert len(result.nodes) == 1
    node = result.nodes[0]
    assert node.uid and node.name and node.version
    for count in (node.num_clients, node.num_users, node.num_channels, node.num_subs):
        assert isinstance(count, int) and count >= 0


def test_channels_result_without_subscribers(cent: Any) -> None:
    result = cent.channels(ChannelsRequest(pattern="chat:nobody-here-*"))
    assert isinstance(result, ChannelsResult)
    assert result.channels == {}


def test_unknown_namespace_is_api_error_102(cent: Any) -> None:
    with pytest.raises(CentApiResponseError) as exc_info:
        cent.publish(PublishRequest(channel="nope:x", data={"text": "hi"}))
    assert exc_info.value.code == 102
    assert exc_info.value.message == "unknown channel"


def test_wrong_api_key_is_unauthorized(server: ServerProcess) -> None:
    with cent_client(server, api_key="wrong-key") as cent, pytest.raises(CentUnauthorizedError):
        cent.info(InfoRequest())


async def _read_until(ws: Any, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
    """Read JSON messages (one or several newline-separated per frame) until one matches."""

    async def read() -> dict[str, Any]:
        while True:
            frame = await ws.recv()
            for line in str(frame).splitlines():
                if not line.strip():
                    continue
                message: dict[str, Any] = json.loads(line)
                if predicate(message):
                    return message

    return await asyncio.wait_for(read(), timeout)


def test_publication_reaches_websocket_client(server: ServerProcess, cent: Any) -> None:
    channel = "chat:cent-ws"
    payload = {"text": "from cent", "list": [1, 2, 3], "nested": {"ok": True}}
    seen: dict[str, Any] = {}

    async def scenario() -> None:
        async with websockets.connect(server.ws_url) as ws:
            await ws.send(json.dumps({"id": 1, "connect": {"token": token("carol")}}))
            connect = await _read_until(ws, lambda m: m.get("id") == 1)
            assert "error" not in connect, connect
            await ws.send(json.dumps({"id": 2, "subscribe": {"channel": channel}}))
            subscribe = await _read_until(ws, lambda m: m.get("id") == 2)
            assert "error" not in subscribe, subscribe

            seen["channels"] = await asyncio.to_thread(
                cent.channels, ChannelsRequest(pattern="chat:cent-*")
            )
            seen["info"] = await asyncio.to_thread(cent.info, InfoRequest())
            await asyncio.to_thread(cent.publish, PublishRequest(channel=channel, data=payload))
            seen["push"] = await _read_until(ws, lambda m: "push" in m)

    asyncio.run(scenario())
    channels = seen["channels"].channels
    assert list(channels) == [channel]
    assert channels[channel].num_clients == 1
    node = seen["info"].nodes[0]
    assert node.num_clients >= 1 and node.num_channels >= 1 and node.num_subs >= 1
    assert seen["push"] == {"push": {"channel": channel, "pub": {"data": payload}}}
