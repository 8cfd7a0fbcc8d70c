"""Helpers of the centrifuge-python 0.7.0 tests: event recorders, a client factory and a runner.

pytest-asyncio is not a dependency: each test drives its own loop with `asyncio.run` (`run`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from centrifuge import Client, ClientEventHandler, SubscriptionEventHandler

from tests.serverproc import ServerProcess

Transition = tuple[int, str]
CONNECT_CALLED: Transition = (0, "connect called")


class Frozen:
    """Stops recording once the scenario is over (the cleanup disconnect is not part of it)."""

    frozen = False


class ClientLog(ClientEventHandler, Frozen):  # type: ignore[misc]
    """Records the client's lifecycle events."""

    def __init__(self) -> None:
        self.connected: list[str] = []
        self.connecting: list[Transition] = []
        self.disconnected: list[Transition] = []
        self.errors: list[tuple[int, Exception]] = []

    async def on_connecting(self, ctx: Any) -> None:
        if self.frozen:
            return
        self.connecting.append((ctx.code, ctx.reason))

    async def on_connected(self, ctx: Any) -> None:
        if self.frozen:
            return
        self.connected.append(ctx.client)

    async def on_disconnected(self, ctx: Any) -> None:
        if self.frozen:
            return
        self.disconnected.append((ctx.code, ctx.reason))

    async def on_error(self, ctx: Any) -> None:
        if self.frozen:
            return
        self.errors.append((ctx.code, ctx.error))


class SubLog(SubscriptionEventHandler, Frozen):  # type: ignore[misc]
    """Records a subscription's events and the publications it receives."""

    def __init__(self) -> None:
        self.subscribing: list[Transition] = []
        self.subscribed: list[str] = []
        self.unsubscribed: list[Transition] = []
        self.errors: list[tuple[int, Exception]] = []
        self.publications: list[tuple[Any, tuple[str, str] | None]] = []

    async def on_subscribing(self, ctx: Any) -> None:
        if self.frozen:
            return
        self.subscribing.append((ctx.code, ctx.reason))

    async def on_subscribed(self, ctx: Any) -> None:
        if self.frozen:
            return
        self.subscribed.append(ctx.channel)

    async def on_unsubscribed(self, ctx: Any) -> None:
        if self.frozen:
            return
        self.unsubscribed.append((ctx.code, ctx.reason))

    async def on_error(self, ctx: Any) -> None:
        if self.frozen:
            return
        self.errors.append((ctx.code, ctx.error))

    async def on_publication(self, ctx: Any) -> None:
        if self.frozen:
            return
        info = ctx.pub.info
        self.publications.append((ctx.pub.data, None if info is None else (info.client, info.user)))


def new_client(
    server: ServerProcess,
    log: ClientLog,
    jwt: str,
    get_token: Callable[[], Awaitable[str]] | None = None,
    **options: Any,
) -> Any:
    """A JSON-protocol client with short reconnect delays that ignores proxy env variables
    (`options` override these defaults)."""
    settings: dict[str, Any] = {
        "proxy": None,
        "timeout": 3.0,
        "min_reconnect_delay": 0.1,
        "max_reconnect_delay": 0.5,
    }
    settings.update(options)
    return Client(server.ws_url, events=log, token=jwt, get_token=get_token, **settings)


def run(
    scenario: Callable[[list[Any]], Coroutine[Any, Any, None]],
    *logs: Frozen,
    timeout: float = 20.0,
) -> None:
    """Run `scenario(clients)` in a fresh loop with a hard timeout, then freeze `logs` and
    disconnect the clients the scenario registered."""

    async def main() -> None:
        clients: list[Any] = []
        try:
            await asyncio.wait_for(scenario(clients), timeout)
        finally:
            for log in logs:
                log.frozen = True
            for client in clients:
                await client.disconnect()
            # The SDK closes its WebSocket in a background task; let it finish before
            # asyncio.run cancels it (a cancelled close leaks the socket: ResourceWarning).
            current = asyncio.current_task()
            pending = [task for task in asyncio.all_tasks() if task is not current]
            if pending:
                await asyncio.wait(pending, timeout=3.0)

    asyncio.run(main())


def assert_stayed_connected(log: ClientLog) -> None:
    """One `connect called` transition, a connection, and no disconnect or reconnect."""
    assert log.connecting == [CONNECT_CALLED]
    assert log.disconnected == []
    assert len(log.connected) == 1
    assert isinstance(log.connected[0], str) and len(log.connected[0]) >= 8


class StreamLog(SubLog):
    """A SubLog that also records what recovery and join/leave tests look at: every
    `subscribed` context, every publication with its offset and the number of `subscribed`
    events seen when it arrived (1 = first subscription, 2 = after the first resubscribe...),
    and join/leave events as (user, client)."""

    def __init__(self) -> None:
        super().__init__()
        self.contexts: list[Any] = []
        self.stream: list[tuple[Any, int, int]] = []
        self.joins: list[tuple[str, str]] = []
        self.leaves: list[tuple[str, str]] = []

    async def on_subscribed(self, ctx: Any) -> None:
        await super().on_subscribed(ctx)
        if not self.frozen:
            self.contexts.append(ctx)

    async def on_publication(self, ctx: Any) -> None:
        await super().on_publication(ctx)
        if not self.frozen:
            self.stream.append((ctx.pub.data, ctx.pub.offset, len(self.contexts)))

    async def on_join(self, ctx: Any) -> None:
        if not self.frozen:
            self.joins.append((ctx.info.user, ctx.info.client))

    async def on_leave(self, ctx: Any) -> None:
        if not self.frozen:
            self.leaves.append((ctx.info.user, ctx.info.client))
