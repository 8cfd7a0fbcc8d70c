"""Every server API method through cent 5.2.0, with a raw WebSocket client observing the effect."""

from __future__ import annotations

from typing import Any

import pytest
from cent import (
    BatchRequest,
    BoolValue,
    CentApiResponseError,
    ChannelOptionsOverride,
    Disconnect,
    DisconnectRequest,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    RefreshRequest,
    SubscribeRequest,
    UnsubscribeRequest,
)

from tests.sdk.common import token
from tests.serverproc import ServerProcess
from tests.wsclient import RawWebSocket

pytestmark = pytest.mark.sdk


def _client(server: ServerProcess, user: str) -> tuple[RawWebSocket, str]:
    ws = RawWebSocket(server.host, server.port).open()
    client_id: str = ws.connect(token(user))["connect"]["client"]
    return ws, client_id


def test_subscribe_and_unsubscribe(server: ServerProcess, cent: Any) -> None:
    ws, client_id = _client(server, "cent-sub")
    cent.subscribe(
        SubscribeRequest(
            user="cent-sub",
            channel="chat:cent-sub",
            client=client_id,
            data={"welcome": True},
            override=ChannelOptionsOverride(presence=BoolValue(value=False)),
        )
    )
    assert ws.push() == {"channel": "chat:cent-sub", "subscribe": {"data": {"welcome": True}}}
    cent.publish(PublishRequest(channel="chat:cent-sub", data={"n": 1}))
    assert ws.push() == {"channel": "chat:cent-sub", "pub": {"data": {"n": 1}}}
    cent.unsubscribe(UnsubscribeRequest(user="cent-sub", channel="chat:cent-sub"))
    assert ws.push() == {
        "channel": "chat:cent-sub",
        "unsubscribe": {"code": 2000, "reason": "server unsubscribe"},
    }


def test_disconnect_with_custom_code(server: ServerProcess, cent: Any) -> None:
    ws, _ = _client(server, "cent-dc")
    cent.disconnect(
        DisconnectRequest(user="cent-dc", disconnect=Disconnect(code=4501, reason="banned"))
    )
    assert ws.recv_close() == (4501, "banned")


def test_refresh_expired(server: ServerProcess, cent: Any) -> None:
    ws, _ = _client(server, "cent-refresh")
    cent.refresh(RefreshRequest(user="cent-refresh", expired=True))
    assert ws.close_code() == 3005


@pytest.mark.parametrize(
    "request_",
    [
        PresenceRequest(channel="news"),
        PresenceStatsRequest(channel="news"),
        HistoryRequest(channel="news", limit=10),
        HistoryRemoveRequest(channel="news"),
    ],
)
def test_presence_and_history_methods_answer_not_available(cent: Any, request_: Any) -> None:
    # No namespace of the base config keeps presence or history.
    method = {
        PresenceRequest: cent.presence,
        PresenceStatsRequest: cent.presence_stats,
        HistoryRequest: cent.history,
        HistoryRemoveRequest: cent.history_remove,
    }[type(request_)]
    with pytest.raises(CentApiResponseError) as exc:
        method(request_)
    assert exc.value.code == 108


def test_batch(cent: Any) -> None:
    result = cent.batch(
        BatchRequest(
            requests=[
                PublishRequest(channel="news", data={"a": 1}),
                InfoRequest(),
                PublishRequest(channel="news", data={"b": 2}),
            ],
            parallel=True,
        )
    )
    assert len(result.replies) == 3
    assert result.replies[1].nodes[0].uid
