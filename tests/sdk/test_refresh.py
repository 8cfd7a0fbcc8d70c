"""Client-side token refresh with centrifuge-js 5.8.0 and centrifuge-python 0.7.0 (spec §3.9,
§3.10, §8.3): tokens live 2 s and the server closes an expired connection (3005) or removes an
expired subscription (unsubscribe 2501) 1 s after expiry, so a client only stays put for the
7 s of a scenario if its SDK keeps getting fresh tokens and sending `refresh`/`sub_refresh`.

The js scripts cannot sign tokens: their getToken callbacks fetch them from a loopback HTTP
endpoint run by the test (`TokenIssuer`), which also counts the calls.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest
from cent import PublishRequest
from centrifuge import ClientState, SubscriptionState

from centrifugo_fast.auth.jwt import make_token
from tests.sdk.common import cent_client, eventually, token
from tests.sdk.jsrun import run_script_with, wait_marker
from tests.sdk.pysdk import CONNECT_CALLED, ClientLog, SubLog, new_client, run
from tests.serverproc import SECRET, ServerProcess

pytestmark = pytest.mark.sdk

#: Lifetime of every token the scenarios get (seconds).
TOKEN_TTL = 2
#: How long a client stays after subscribing: over three token lifetimes.
STAY_SECONDS = 7.0
STAY_MS = int(STAY_SECONDS * 1000)
#: Refreshes (token requests after the first) a scenario must at least see.
MIN_REFRESHES = 3
#: Without a refresh, the connection is closed 1 s after its token expired (3005)...
CONNECTION_EXPIRY_CONFIG = {"client": {"expired_close_delay": "1s"}}
#: ... and the subscription removed 1 s after its token expired (unsubscribe 2501).
SUBSCRIPTION_EXPIRY_CONFIG = {"client": {"expired_sub_close_delay": "1s"}}
PAYLOAD = {"text": "after the refreshes", "n": 3}


class TokenCall(NamedTuple):
    """One request to the token endpoint."""

    kind: str  # "connection" or "subscription"
    user: str
    channel: str
    at: float  # time.monotonic()


class _IssuerHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, issuer: TokenIssuer) -> None:
        super().__init__(("127.0.0.1", 0), _IssuerHandler)
        self.issuer = issuer


class _IssuerHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, _IssuerHTTPServer)
        parts = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        jwt = server.issuer.issue(parts.path.strip("/"), query)
        if jwt is None:
            self.send_error(400)
            return
        body = jwt.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the calls are recorded by the issuer."""


class TokenIssuer:
    """A loopback HTTP endpoint issuing fresh tokens that live `ttl` seconds:
    GET /connection?user=U (connection token), GET /subscription?user=U&channel=C
    (subscription token). Every call is recorded in `calls`."""

    def __init__(self, ttl: int) -> None:
        self.ttl = ttl
        self.calls: list[TokenCall] = []
        self._lock = threading.Lock()
        self._httpd = _IssuerHTTPServer(self)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def issue(self, kind: str, query: dict[str, str]) -> str | None:
        """A fresh token for the request, or None for a bad one."""
        user = query.get("user")
        channel = query.get("channel", "")
        if user is None or kind not in ("connection", "subscription"):
            return None
        if kind == "subscription" and not channel:
            return None
        with self._lock:
            self.calls.append(TokenCall(kind, user, channel, time.monotonic()))
        if kind == "connection":
            return make_token(SECRET, user, self.ttl)
        return make_token(SECRET, user, self.ttl, extra={"channel": channel})

    def of_kind(self, kind: str) -> list[TokenCall]:
        """The calls for one kind of token, oldest first."""
        with self._lock:
            return [call for call in self.calls if call.kind == kind]

    def __enter__(self) -> TokenIssuer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5.0)


@pytest.fixture
def issuer() -> Iterator[TokenIssuer]:
    """The token endpoint of the js scenarios (tokens live TOKEN_TTL seconds)."""
    with TokenIssuer(TOKEN_TTL) as started:
        yield started


def assert_refreshed_throughout(times: list[float]) -> None:
    """A first token plus at least MIN_REFRESHES more, the last ones near the end of the stay
    (not a burst at the start)."""
    assert len(times) >= 1 + MIN_REFRESHES, f"only {len(times)} token request(s)"
    assert times[-1] - times[0] >= STAY_SECONDS - TOKEN_TTL, times


def assert_refresh_trace(trace: dict[str, Any], method: str, channel: str | None = None) -> None:
    """The SDK sent MIN_REFRESHES+ `method` commands with a token, and the server answered
    each (but a last one in flight when the script ended) with `expires` and a ttl."""
    sent, replies = trace["sent"], trace["replies"]
    assert len(sent) >= MIN_REFRESHES, trace
    assert all(command["hasToken"] for command in sent), trace
    if channel is not None:
        assert all(command.get("channel") == channel for command in sent), trace
    assert len(replies) >= len(sent) - 1, trace
    for reply in replies:
        assert reply.get("error") is None, reply
        assert reply["result"]["expires"] is True, reply
        assert 0 <= reply["result"].get("ttl", 0) <= TOKEN_TTL, reply


def assert_js_stayed(result: dict[str, Any], channel: str) -> None:
    """One connection and one subscription throughout, the publication received once."""
    assert result["connecting"] == [{"code": 0, "reason": "connect called"}]
    assert result["disconnected"] == []
    assert len(result["connected"]) == 1
    assert result["errors"] == []
    assert result["subscribing"] == [{"code": 0, "reason": "subscribe called"}]
    assert result["subscribed"] == [{"channel": channel}]
    assert result["unsubscribed"] == []
    assert result["subErrors"] == []
    assert result["subStates"] == ["subscribing", "subscribed"]
    assert result["publications"] == [{"data": PAYLOAD, "info": None}]
    assert result["finalState"] == "connected"
    assert result["subFinalState"] == "subscribed"


def publish_at_marker(server: ServerProcess, channel: str) -> Callable[[Any], None]:
    """An action for run_script_with: publish PAYLOAD via cent once the script says @publish."""

    def action(proc: subprocess.Popen[str]) -> None:
        wait_marker(proc, "publish")
        with cent_client(server) as cent:
            cent.publish(PublishRequest(channel=channel, data=PAYLOAD))

    return action


def assert_py_stayed(log: ClientLog, sub_log: SubLog, channel: str) -> None:
    """One connection and one subscription throughout, the publication received once."""
    assert log.connecting == [CONNECT_CALLED]
    assert log.disconnected == []
    assert len(log.connected) == 1
    assert log.errors == []
    assert sub_log.subscribing == [(0, "subscribe called")]
    assert sub_log.subscribed == [channel]
    assert sub_log.unsubscribed == []
    assert sub_log.errors == []
    assert sub_log.publications == [(PAYLOAD, None)]


# ---------------------------------------------------------------- centrifuge-js


def test_js_connection_token_is_refreshed(
    node: str, make_server: Callable[..., ServerProcess], issuer: TokenIssuer
) -> None:
    srv = make_server(CONNECTION_EXPIRY_CONFIG)
    channel = "chat:js-refresh"
    args = {
        "url": srv.ws_url,
        "token-url": issuer.url,
        "user": "alice",
        "channel": channel,
        "duration": str(STAY_MS),
    }
    result = run_script_with(node, "refresh.js", args, publish_at_marker(srv, channel))
    calls = issuer.of_kind("connection")
    assert [call.user for call in calls] == ["alice"] * len(calls)
    assert len(result["getTokenCalls"]) == len(calls)
    assert_refreshed_throughout([call.at for call in calls])
    # Every token after the first went into a `refresh` command (no reconnect used it).
    assert len(result["trace"]["sent"]) == len(calls) - 1
    assert_refresh_trace(result["trace"], "refresh")
    assert result["connectedForMs"] >= STAY_MS
    assert result["stateBeforePublish"] == "connected"
    assert_js_stayed(result, channel)


def test_js_subscription_token_is_refreshed(
    node: str, make_server: Callable[..., ServerProcess], issuer: TokenIssuer
) -> None:
    srv = make_server(SUBSCRIPTION_EXPIRY_CONFIG)
    channel = "$js-refresh"
    args = {
        "url": srv.ws_url,
        "token": token("alice"),
        "token-url": issuer.url,
        "user": "alice",
        "channel": channel,
        "duration": str(STAY_MS),
    }
    result = run_script_with(node, "sub_refresh.js", args, publish_at_marker(srv, channel))
    calls = issuer.of_kind("subscription")
    assert [(call.user, call.channel) for call in calls] == [("alice", channel)] * len(calls)
    assert [call["channel"] for call in result["getTokenCalls"]] == [channel] * len(calls)
    assert_refreshed_throughout([call.at for call in calls])
    # Every token after the first went into a `sub_refresh` command (no resubscribe used it).
    assert len(result["trace"]["sent"]) == len(calls) - 1
    assert_refresh_trace(result["trace"], "sub_refresh", channel)
    assert result["subscribedForMs"] >= STAY_MS
    assert result["subStateBeforePublish"] == "subscribed"
    assert_js_stayed(result, channel)


# ---------------------------------------------------------------- centrifuge-python


def test_py_connection_token_is_refreshed(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(CONNECTION_EXPIRY_CONFIG)
    channel = "chat:py-refresh"
    log, sub_log = ClientLog(), SubLog()
    calls: list[float] = []

    async def get_token() -> str:
        calls.append(time.monotonic())
        return make_token(SECRET, "alice", TOKEN_TTL)

    async def scenario(clients: list[Any]) -> None:
        # No token: the SDK gets the first one from get_token too.
        client = new_client(srv, log, "", get_token=get_token)
        clients.append(client)
        sub = client.new_subscription(channel, events=sub_log)
        await client.connect()
        await sub.subscribe()
        await sub.ready(5.0)
        await asyncio.sleep(STAY_SECONDS)
        assert client.state == ClientState.CONNECTED
        with cent_client(srv) as cent:
            await asyncio.to_thread(cent.publish, PublishRequest(channel=channel, data=PAYLOAD))
        await eventually(lambda: len(sub_log.publications) >= 1, "the publication")
        await asyncio.sleep(0.2)  # a duplicate would show up by now
        assert client.state == ClientState.CONNECTED
        assert sub.state == SubscriptionState.SUBSCRIBED

    run(scenario, log, sub_log, timeout=STAY_SECONDS + 10)
    assert_refreshed_throughout(calls)
    assert_py_stayed(log, sub_log, channel)


def test_py_subscription_token_is_refreshed(make_server: Callable[..., ServerProcess]) -> None:
    srv = make_server(SUBSCRIPTION_EXPIRY_CONFIG)
    channel = "$py-refresh"
    log, sub_log = ClientLog(), SubLog()
    calls: list[tuple[float, str]] = []

    async def get_token(for_channel: str) -> str:
        calls.append((time.monotonic(), for_channel))
        return make_token(SECRET, "alice", TOKEN_TTL, extra={"channel": for_channel})

    async def scenario(clients: list[Any]) -> None:
        client = new_client(srv, log, token("alice"))
        clients.append(client)
        sub = client.new_subscription(channel, events=sub_log, get_token=get_token)
        await client.connect()
        await sub.subscribe()
        await sub.ready(5.0)
        await asyncio.sleep(STAY_SECONDS)
        assert sub.state == SubscriptionState.SUBSCRIBED
        with cent_client(srv) as cent:
            await asyncio.to_thread(cent.publish, PublishRequest(channel=channel, data=PAYLOAD))
        await eventually(lambda: len(sub_log.publications) >= 1, "the publication")
        await asyncio.sleep(0.2)  # a duplicate would show up by now
        assert client.state == ClientState.CONNECTED
        assert sub.state == SubscriptionState.SUBSCRIBED

    run(scenario, log, sub_log, timeout=STAY_SECONDS + 10)
    assert [for_channel for _, for_channel in calls] == [channel] * len(calls)
    assert_refreshed_throughout([at for at, _ in calls])
    assert_py_stayed(log, sub_log, channel)
