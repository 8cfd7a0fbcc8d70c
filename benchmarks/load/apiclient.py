"""Server API calls over keep-alive HTTP/1.1 connections, paced for a target publish rate."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

from . import wire

#: Publications per batch request at most (keeps one request's latency share small).
_MAX_BATCH = 500
_TICK = 0.005


class ApiError(Exception):
    """An API call failed at the HTTP level or returned an error."""


class _Conn(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._body: list[bytes] = []
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._finish(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._finish(ApiError("API connection lost"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        body, self._body = b"".join(self._body), []
        if waiter is not None and not waiter.done():
            waiter.set_result((self._parser.get_status_code(), body))

    def _finish(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def request(self, head: bytes, body: bytes) -> asyncio.Future[tuple[int, bytes]]:
        assert self.transport is not None and self._waiter is None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(head + b"%d\r\n\r\n" % len(body) + body)
        return self._waiter


class ApiClient:
    """A pool of keep-alive connections to the server API (``/api/<method>``)."""

    def __init__(self, url: str, key: str, size: int = 8) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"expected http://HOST:PORT/PREFIX, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = (parts.path or "/api").rstrip("/")
        self.key = key
        self.size = size
        self._idle: list[_Conn] = []
        self._busy = 0
        self.errors = 0
        self.last_error = ""

    async def _conn(self) -> _Conn:
        while self._idle:
            conn = self._idle.pop()
            if not conn.lost:
                return conn
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Conn, self.host, self.port)
        return conn

    def _head(self, method: str) -> bytes:
        return (
            f"POST {self.prefix}/{method} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"X-API-Key: {self.key}\r\nContent-Type: application/json\r\nContent-Length: "
        ).encode()

    @property
    def free(self) -> int:
        """How many more requests may start now."""
        return self.size - self._busy

    async def call(self, method: str, body: bytes) -> bytes:
        """One API call; raises ApiError on a non-200 answer or an error in the reply."""
        self._busy += 1
        try:
            conn = await self._conn()
            status, answer = await conn.request(self._head(method), body)
            self._idle.append(conn)
        finally:
            self._busy -= 1
        if status != 200 or b'"error"' in answer:
            self.errors += 1
            self.last_error = f"{status} {answer[:200]!r}"
            raise ApiError(self.last_error)
        return answer

    async def publish_many(self, channels: list[str], data: list[bytes]) -> None:
        """Publish data[i] into channels[i]: one publish call, or one batch call."""
        if len(channels) == 1:
            body = b'{"channel":%s,"data":%s}' % (json.dumps(channels[0]).encode(), data[0])
            await self.call("publish", body)
            return
        commands = b",".join(
            b'{"publish":{"channel":%s,"data":%s}}' % (json.dumps(ch).encode(), d)
            for ch, d in zip(channels, data, strict=True)
        )
        await self.call("batch", b'{"commands":[' + commands + b"]}")

    def close(self) -> None:
        """Close the idle connections."""
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()


@dataclass(slots=True)
class PaceResult:
    """What a paced publishing run actually did."""

    published: int
    seconds: float
    errors: int


async def publish_paced(
    api: ApiClient,
    rate: float,
    seconds: float,
    pick_channel: Callable[[int], str],
    size: int,
) -> PaceResult:
    """Publish `rate` payloads per second for `seconds`, batching what a tick owes.

    Every `_TICK` seconds the publications due so far go out as batch requests (one
    publication per request below 1 / `_TICK` per second). Publications owed while every
    connection is busy are sent later (batched), never dropped, and carry the time they were
    due: an overloaded server shows up as latency, not as a lower offered rate.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + seconds
    sent = 0
    tasks: set[asyncio.Task[None]] = set()
    errors_before = api.errors
    while True:
        now = loop.time()
        if now >= end:
            break
        due = int((now - start) * rate) - sent
        while due > 0 and api.free > 0:
            n = min(due, _MAX_BATCH)
            # Stamp with the time the batch's first publication was due, not the time it
            # goes out: a publication held back because every connection waited on the
            # server is late by that much (no coordinated omission). Lateness within one
            # tick is the pacing's own granularity and is not counted.
            late = loop.time() - (start + (sent + 1) / rate) - _TICK
            stamp = time.perf_counter_ns() - (int(late * 1e9) if late > 0 else 0)
            channels = [pick_channel(sent + i) for i in range(n)]
            data = [wire.payload(stamp, size)] * n
            task = asyncio.create_task(_guarded(api.publish_many(channels, data)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += n
            due -= n
        await asyncio.sleep(_TICK)
    if tasks:
        await asyncio.wait(tasks, timeout=10)
    return PaceResult(sent, loop.time() - start, api.errors - errors_before)


async def _guarded(call: object) -> None:
    try:
        await call  # type: ignore[misc]
    except ApiError:
        pass  # counted in ApiClient.errors
