"""One Redis shard's command path: a redis-py client plus automatic pipelining.

Commands issued in the same event-loop turn are sent together in one pipeline (engine.md
§9.2, the idea of rueidis' automatic pipelining); up to `PARALLEL_BATCHES` pipelines are in
flight per shard. Every call is bounded by the shard's `io_timeout` and client retries are
off, so a dead or stalled Redis surfaces as `EngineUnavailable` quickly. Scripts are called
with EVALSHA; a NOSCRIPT reply (a restarted or newly promoted server) loads them and retries.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.asyncio.sentinel import Sentinel, SentinelManagedConnection
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError
from redis.retry import Retry

from ..base import EngineUnavailable
from . import scripts
from .address import CLUSTER, SENTINEL, UNIX, ShardSpec
from .scripts import Script

logger = logging.getLogger("centrifugo_fast.redis")

#: At most this many commands go into one pipeline.
MAX_BATCH = 512
#: Pipelines in flight at once per shard (each on its own pooled connection).
PARALLEL_BATCHES = 4

_Item = tuple[tuple[Any, ...], "asyncio.Future[Any]", Script | None]


def _pack(args: tuple[Any, ...]) -> list[bytes]:
    # hiredis' C packer (redis-py's asyncio connection packs in Python).
    first = args[0]
    if isinstance(first, str) and " " in first:
        args = (*first.split(), *args[1:])
    return [hiredis.pack_command(cast(Any, args))]


class _Connection(Connection):
    def pack_command(self, *args: Any) -> list[bytes]:
        return _pack(args)


class _UnixConnection(UnixDomainSocketConnection):
    def pack_command(self, *args: Any) -> list[bytes]:
        return _pack(args)


class _SentinelConnection(SentinelManagedConnection):
    def pack_command(self, *args: Any) -> list[bytes]:
        return _pack(args)


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


class RedisShard:
    """Commands to one shard: a Redis server, a Sentinel-managed master or a Cluster."""

    def __init__(self, spec: ShardSpec, index: int, loop: asyncio.AbstractEventLoop) -> None:
        self.spec = spec
        self.index = index
        self.loop = loop
        self.io_timeout = spec.io_timeout
        self.cluster = spec.kind == CLUSTER
        self.sentinel: Sentinel | None = None
        self.client: Redis | RedisCluster
        # No socket timeout on commands: every call and every pipeline is bounded by
        # io_timeout here (a per-read timeout in redis-py costs more than the read itself).
        common: dict[str, Any] = {
            "socket_timeout": None,
            "socket_connect_timeout": spec.connect_timeout,
            "retry": _no_retry(),
            "protocol": 2,
            "decode_responses": False,
            "username": spec.user or None,
            "password": spec.password or None,
            "client_name": spec.client_name or None,
        }
        if spec.kind == CLUSTER:
            host, port = spec.hosts[0]
            self.client = RedisCluster(
                host=host,
                port=port,
                startup_nodes=[ClusterNode(h, p) for h, p in spec.hosts],
                **common,
            )
        elif spec.kind == SENTINEL:
            sentinel_kwargs: dict[str, Any] = {
                "socket_timeout": spec.io_timeout,
                "socket_connect_timeout": spec.connect_timeout,
                "username": spec.sentinel_user or None,
                "password": spec.sentinel_password or None,
                "retry": _no_retry(),
            }
            self.sentinel = Sentinel(  # type: ignore[no-untyped-call]
                spec.hosts, sentinel_kwargs=sentinel_kwargs, **common
            )
            self.client = self.sentinel.master_for(
                spec.master_name, db=spec.db, connection_class=_SentinelConnection, **common
            )
        elif spec.kind == UNIX:
            self.client = Redis(unix_socket_path=spec.unix_path, db=spec.db, **common)
            self.client.connection_pool.connection_class = _UnixConnection
        else:
            host, port = spec.hosts[0]
            self.client = Redis(host=host, port=port, db=spec.db, **common)
            self.client.connection_pool.connection_class = _Connection
        self._queue: deque[_Item] = deque()
        self._running = 0
        self._kick_pending = False

    # ---- lifecycle ----

    async def initialize(self) -> None:
        """Connect (Cluster: learn the topology) and load the scripts; errors propagate."""
        async with asyncio.timeout(self.spec.connect_timeout + self.io_timeout):
            if isinstance(self.client, RedisCluster):
                await self.client.initialize()
            await self.load_scripts()

    async def load_scripts(self, only: set[Script] | None = None) -> None:
        """SCRIPT LOAD the engine's scripts (every primary in a Cluster)."""
        for script in scripts.ALL if only is None else only:
            await self.client.script_load(script.source)

    async def close(self) -> None:
        """Close every connection of the shard."""
        await self.client.aclose()
        if self.sentinel is not None:
            for sentinel in self.sentinel.sentinels:
                await sentinel.aclose()

    async def pubsub_address(self) -> tuple[str, int] | str:
        """Where this shard's PUB/SUB connection goes now: (host, port) or a unix path."""
        spec = self.spec
        if spec.kind == UNIX:
            return spec.unix_path
        if self.sentinel is not None:
            async with asyncio.timeout(spec.connect_timeout + self.io_timeout):
                host, port = await self.sentinel.discover_master(spec.master_name)
            return str(host), int(port)
        if isinstance(self.client, RedisCluster):
            # Classic PUBLISH reaches every node of a Cluster: any node will do.
            nodes = [(str(n.host), int(n.port)) for n in self.client.get_nodes()] or spec.hosts
            return random.choice(nodes)
        return spec.hosts[0]

    # ---- commands ----

    async def call(self, *args: Any) -> Any:
        """One command, pipelined with whatever else is issued in this loop turn."""
        return await self._submit(args, None)

    async def script(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """Run one of the engine's Lua scripts (EVALSHA, loading it on NOSCRIPT)."""
        return await self._submit(("EVALSHA", script.sha, len(keys), *keys, *args), script)

    async def publish(self, name: str | bytes, payload: bytes) -> Any:
        """PUBLISH (in a Cluster through a script routed by the channel name's slot)."""
        if self.cluster:
            return await self.script(scripts.PUBLISH_PLAIN, [_text(name)], [payload, "publish"])
        return await self.call("PUBLISH", name, payload)

    async def _submit(self, args: tuple[Any, ...], script: Script | None) -> Any:
        loop = self.loop
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append((args, fut, script))
        self._kick()
        timer = loop.call_later(self.io_timeout, _expire, fut)
        try:
            return await fut
        finally:
            timer.cancel()

    def _kick(self) -> None:
        # One drain task at most waits to start; it takes everything queued by then.
        if self._running < PARALLEL_BATCHES and not self._kick_pending:
            self._kick_pending = True
            self._running += 1
            self.loop.create_task(self._drain())

    async def _drain(self) -> None:
        self._kick_pending = False
        queue = self._queue
        try:
            while queue:
                batch: list[_Item] = []
                while queue and len(batch) < MAX_BATCH:
                    item = queue.popleft()
                    if not item[1].done():  # not timed out while queued
                        batch.append(item)
                if queue:
                    self._kick()
                if batch:
                    await self._execute(batch)
        finally:
            self._running -= 1
            if queue:
                self._kick()

    async def _pipeline(self, batch: list[_Item]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for args, _, _ in batch:
            pipe.execute_command(*args)
        async with asyncio.timeout(self.io_timeout):
            results: list[Any] = await pipe.execute(raise_on_error=False)
        return results

    async def _execute(self, batch: list[_Item]) -> None:
        try:
            results = await self._pipeline(batch)
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if missing:
                await self.load_scripts({s for i in missing if (s := batch[i][2]) is not None})
                retried = await self._pipeline([batch[i] for i in missing])
                for i, result in zip(missing, retried, strict=True):
                    results[i] = result
        except (RedisError, OSError, TimeoutError) as exc:
            for _, fut, _ in batch:
                if not fut.done():
                    fut.set_exception(_unavailable(exc, self.spec.describe()))
            return
        for (_, fut, _), result in zip(batch, results, strict=True):
            if fut.done():
                continue
            if isinstance(result, Exception):
                fut.set_exception(_unavailable(result, self.spec.describe()))
            else:
                fut.set_result(result)


def _unavailable(exc: BaseException, where: str) -> EngineUnavailable:
    what = str(exc) or type(exc).__name__
    return EngineUnavailable(f"redis {where}: {what}")


def _text(name: str | bytes) -> str:
    return name.decode() if isinstance(name, bytes) else name


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(EngineUnavailable("redis: command timed out"))
