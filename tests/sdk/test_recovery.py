"""Recovery after a reconnect with centrifuge-js 5.8.0 and centrifuge-python 0.7.0.

A subscriber of `rec:*` (history, forced recovery) receives one live publication (offset 1),
then the server API cuts its connection with code 4000 (the SDK reconnects) and N publications
are made in one `batch` call while the SDK waits for its slow reconnect (1.5-2 s). After the
resubscribe the SDK must report a recovery and deliver exactly those N, in order, once; past
`client.recovery_max_publication_limit` (30) it must report a failed recovery and deliver none.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from cent import (
    BatchRequest,
    ChannelsRequest,
    Client as CentClient,
    Disconnect,
    DisconnectRequest,
    HistoryRemoveRequest,
    HistoryRemoveResult,
    HistoryRequest,
    HistoryResult,
    PublishRequest,
    PublishResult,
)
from centrifuge import ClientState, SubscriptionState

from tests.sdk.common import (
    FEATURES_CONFIG,
    RECOVERY_LIMIT,
    eventually,
    token,
    wait_for_clients,
)
from tests.sdk.jsrun import run_script_with, wait_marker
from tests.sdk.pysdk import CONNECT_CALLED, ClientLog, StreamLog, new_client, run
from tests.serverproc import ServerProcess, running_server

pytestmark = pytest.mark.sdk

CUT = (4000, "cut")
#: Missed publication counts recovery must handle: one, several, exactly the limit.
RECOVERED_COUNTS = [1, 10, RECOVERY_LIMIT]


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    """One server with history/recovery namespaces for the module."""
    yield from running_server(FEATURES_CONFIG)


def cut_and_publish(cent: CentClient, user: str, channel: str, count: int) -> None:
    """Disconnect `user` with code 4000, then publish `count` publications ({"seq": 1..count})
    in one batch while its SDK is still away (checked before and after the batch)."""
    cent.disconnect(DisconnectRequest(user=user, disconnect=Disconnect(code=4000, reason="cut")))
    wait_for_clients(cent, channel, 0)
    requests = [PublishRequest(channel=channel, data={"seq": seq}) for seq in range(1, count + 1)]
    offsets = []
    for reply in cent.batch(BatchRequest(requests=requests)).replies:
        assert isinstance(reply, PublishResult)
        offsets.append(reply.offset)
    assert offsets == list(range(2, count + 2))
    # Still nobody subscribed: the publications landed while the SDK was disconnected.
    assert cent.channels(ChannelsRequest(pattern=channel)).channels == {}


def missed(count: int) -> list[tuple[dict[str, int], int]]:
    """The (data, offset) pairs of the `count` publications made while disconnected."""
    return [({"seq": seq}, seq + 1) for seq in range(1, count + 1)]


# ---------------------------------------------------------------- centrifuge-js


def run_js_recovery(
    node: str, server: ServerProcess, cent: CentClient, name: str, count: int, expect: int
) -> dict[str, Any]:
    user, channel = f"rec-{name}", f"rec:{name}"

    def act(proc: subprocess.Popen[str]) -> None:
        wait_marker(proc, "subscribed")
        cent.publish(PublishRequest(channel=channel, data={"seq": 0}))
        wait_marker(proc, "live")
        cut_and_publish(cent, user, channel, count)

    args = {
        "url": server.ws_url,
        "token": token(user),
        "channel": channel,
        "expect": str(expect),
        "min-delay": "1500",
        "max-delay": "2000",
    }
    result = run_script_with(node, "recovery.js", args, act)
    assert result["connecting"] == [
        {"code": 0, "reason": "connect called"},
        {"code": 4000, "reason": "cut"},
    ]
    assert result["disconnected"] == []
    assert len(result["connected"]) == 2
    assert result["connected"][0]["client"] != result["connected"][1]["client"]
    assert result["errors"] == [] and result["subErrors"] == []
    # The subscription goes back to subscribing with the client-local code 1.
    assert result["subscribing"] == [
        {"code": 0, "reason": "subscribe called"},
        {"code": 1, "reason": "transport closed"},
    ]
    assert result["unsubscribed"] == []
    assert result["finalState"] == "connected" and result["subFinalState"] == "subscribed"
    first = result["subscribedCtx"][0]
    epoch = first["streamPosition"]["epoch"]
    assert isinstance(epoch, str) and epoch != ""
    assert first == {
        "recoverable": True,
        "positioned": True,
        "wasRecovering": False,
        "recovered": False,
        "hasRecoveredPublications": False,
        "streamPosition": {"offset": 0, "epoch": epoch},
    }
    assert len(result["subscribedCtx"]) == 2
    # The live publication came in the first subscription, the rest after the resubscribe.
    assert result["streamPubs"][0] == {"data": {"seq": 0}, "offset": 1, "session": 1}
    return result


@pytest.mark.parametrize("count", RECOVERED_COUNTS)
def test_js_recovers_missed_publications(
    node: str, server: ServerProcess, cent: CentClient, count: int
) -> None:
    result = run_js_recovery(node, server, cent, f"js-{count}", count, expect=count)
    epoch = result["subscribedCtx"][0]["streamPosition"]["epoch"]
    assert result["subscribedCtx"][1] == {
        "recoverable": True,
        "positioned": True,
        "wasRecovering": True,
        "recovered": True,
        "hasRecoveredPublications": True,
        # As the Go server: the position recovered from; each recovered publication moves it.
        "streamPosition": {"offset": 1, "epoch": epoch},
    }
    after = [(pub["data"], pub["offset"]) for pub in result["streamPubs"][1:]]
    assert after == missed(count)
    assert {pub["session"] for pub in result["streamPubs"][1:]} == {2}
    assert len(result["publications"]) == count + 1


def test_js_beyond_the_limit_is_not_recovered(
    node: str, server: ServerProcess, cent: CentClient
) -> None:
    count = RECOVERY_LIMIT + 1
    result = run_js_recovery(node, server, cent, "js-over", count, expect=0)
    epoch = result["subscribedCtx"][0]["streamPosition"]["epoch"]
    assert result["subscribedCtx"][1] == {
        "recoverable": True,
        "positioned": True,
        "wasRecovering": True,
        "recovered": False,
        "hasRecoveredPublications": False,
        # Not recovered: the current top of the stream, to continue from.
        "streamPosition": {"offset": count + 1, "epoch": epoch},
    }
    assert result["streamPubs"] == [{"data": {"seq": 0}, "offset": 1, "session": 1}]


# ---------------------------------------------------------------- centrifuge-python


def run_py_recovery(
    server: ServerProcess, cent: CentClient, name: str, count: int, expect: int
) -> StreamLog:
    user, channel = f"rec-{name}", f"rec:{name}"
    log, sub_log = ClientLog(), StreamLog()
    final: list[Any] = []

    async def scenario(clients: list[Any]) -> None:
        client = new_client(
            server, log, token(user), min_reconnect_delay=1.5, max_reconnect_delay=2.0
        )
        clients.append(client)
        sub = client.new_subscription(channel, events=sub_log)
        await client.connect()
        await sub.subscribe()
        await sub.ready(5.0)
        await asyncio.to_thread(cent.publish, PublishRequest(channel=channel, data={"seq": 0}))
        await eventually(lambda: len(sub_log.stream) >= 1, "the live publication")
        await asyncio.to_thread(cut_and_publish, cent, user, channel, count)
        await eventually(lambda: len(sub_log.contexts) >= 2, "the resubscribe", timeout=10.0)
        await eventually(
            lambda: len(sub_log.stream) >= 1 + expect, f"{expect} recovered publication(s)"
        )
        await asyncio.sleep(0.4)  # a duplicate (or a publication that should not come) shows
        final.extend([client.state, sub.state])

    run(scenario, log, sub_log)
    assert final == [ClientState.CONNECTED, SubscriptionState.SUBSCRIBED]
    assert log.connecting == [CONNECT_CALLED, CUT]
    assert log.disconnected == []
    assert len(log.connected) == 2 and log.connected[0] != log.connected[1]
    assert log.errors == [] and sub_log.errors == []
    assert sub_log.subscribing == [(0, "subscribe called"), (1, "transport closed")]
    assert sub_log.unsubscribed == []
    assert len(sub_log.contexts) == 2
    first = sub_log.contexts[0]
    assert (first.recoverable, first.positioned) == (True, True)
    assert (first.was_recovering, first.recovered) == (False, False)
    assert first.stream_position.offset == 0
    assert isinstance(first.stream_position.epoch, str) and first.stream_position.epoch != ""
    assert sub_log.stream[0] == ({"seq": 0}, 1, 1)
    return sub_log


@pytest.mark.parametrize("count", RECOVERED_COUNTS)
def test_py_recovers_missed_publications(
    server: ServerProcess, cent: CentClient, count: int
) -> None:
    sub_log = run_py_recovery(server, cent, f"py-{count}", count, expect=count)
    first, second = sub_log.contexts
    assert (second.recoverable, second.positioned) == (True, True)
    assert (second.was_recovering, second.recovered) == (True, True)
    assert second.stream_position.offset == 1
    assert second.stream_position.epoch == first.stream_position.epoch
    assert [(data, offset) for data, offset, _ in sub_log.stream[1:]] == missed(count)
    assert {session for _, _, session in sub_log.stream[1:]} == {2}
    assert len(sub_log.publications) == count + 1


def test_py_beyond_the_limit_is_not_recovered(server: ServerProcess, cent: CentClient) -> None:
    count = RECOVERY_LIMIT + 1
    sub_log = run_py_recovery(server, cent, "py-over", count, expect=0)
    first, second = sub_log.contexts
    assert (second.recoverable, second.positioned) == (True, True)
    assert (second.was_recovering, second.recovered) == (True, False)
    assert second.stream_position.offset == count + 1
    assert second.stream_position.epoch == first.stream_position.epoch
    assert sub_log.stream == [({"seq": 0}, 1, 1)]


# ---------------------------------------------------------------- cent


def test_cent_history_and_history_remove(cent: CentClient) -> None:
    channel = "rec:history"
    published = [cent.publish(PublishRequest(channel=channel, data={"n": n})) for n in range(3)]
    epoch = published[0].epoch
    assert isinstance(epoch, str) and epoch != ""
    assert [(result.offset, result.epoch) for result in published] == [
        (1, epoch),
        (2, epoch),
        (3, epoch),
    ]

    history = cent.history(HistoryRequest(channel=channel, limit=-1))
    assert isinstance(history, HistoryResult)
    assert [(pub.data, pub.offset) for pub in history.publications] == [
        ({"n": 0}, 1),
        ({"n": 1}, 2),
        ({"n": 2}, 3),
    ]
    assert (history.offset, history.epoch) == (3, epoch)
    top = cent.history(HistoryRequest(channel=channel, limit=0))
    assert (top.publications, top.offset, top.epoch) == ([], 3, epoch)

    assert isinstance(
        cent.history_remove(HistoryRemoveRequest(channel=channel)), HistoryRemoveResult
    )
    removed = cent.history(HistoryRequest(channel=channel, limit=-1))
    # The publications are gone; the stream position stays.
    assert (removed.publications, removed.offset, removed.epoch) == ([], 3, epoch)
    after = cent.publish(PublishRequest(channel=channel, data={"n": 3}))
    assert (after.offset, after.epoch) == (4, epoch)
    again = cent.history(HistoryRequest(channel=channel, limit=-1))
    assert [(pub.data, pub.offset) for pub in again.publications] == [({"n": 3}, 4)]
