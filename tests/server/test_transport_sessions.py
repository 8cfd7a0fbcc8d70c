"""Sessions and buffers of the HTTP-based transports are released after every kind of end.

The server runs in this process (Node + Server on the test's event loop) so the registries can
be counted directly: emulation sessions, SockJS sessions, hub connections, open HTTP
connections, writers waiting for a flush, and each transport's own queue.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from centrifugo_fast.codes import DISCONNECT_FORCE_NO_RECONNECT, DISCONNECT_SLOW, Disconnect
from centrifugo_fast.config import load_config
from centrifugo_fast.core.node import Node
from centrifugo_fast.transport.client_stream import StreamClientTransport
from centrifugo_fast.transport.server import Server
from tests.serverproc import free_port

CONFIG: dict[str, Any] = {
    "client": {"insecure": True, "queue_max_size": 65536},
    "http_stream": {"enabled": True},
    "sse": {"enabled": True},
    "uni_http_stream": {"enabled": True},
    "uni_sse": {"enabled": True},
    "sockjs": {"enabled": True},
    "log": {"level": "error"},
}


class Stream:
    """A raw HTTP/1.1 client connection reading a chunked response as it arrives."""

    #: Every stream a test opened (closed when the test ends).
    opened: list[Stream] = []

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        Stream.opened.append(self)
        self.reader = reader
        self.writer = writer
        self.body = b""
        self.ended = False

    @classmethod
    async def open(
        cls, port: int, method: str, path: str, body: bytes = b"", *, rcvbuf: int | None = None
    ) -> Stream:
        if rcvbuf is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        else:
            import socket

            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
        stream = cls(reader, writer)
        await stream.send(method, path, body)
        return stream

    async def send(self, method: str, path: str, body: bytes = b"") -> None:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        await self.writer.drain()

    async def head(self) -> int:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        return int(head.split()[1])

    async def _more(self) -> None:
        size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
        data = await self.reader.readexactly(size + 2)
        if size == 0:
            self.ended = True
        self.body += data[:-2]

    async def until(self, marker: bytes) -> bytes:
        """Body bytes up to and including `marker`."""
        while marker not in self.body:
            await asyncio.wait_for(self._more(), 5)
        head, _, self.body = self.body.partition(marker)
        return head + marker

    async def json_line(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(await self.until(b"\n"))
        return value

    async def end(self) -> None:
        """Wait for the terminating chunk."""
        while not self.ended:
            await asyncio.wait_for(self._more(), 5)

    def close(self) -> None:
        self.writer.close()


async def _post(port: int, path: str, body: bytes) -> int:
    stream = await Stream.open(port, "POST", path, body)
    status = await stream.head()
    stream.close()
    return status


async def _eventually(check: Callable[[], bool], what: str, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _run(
    test: Callable[[Server, int], Awaitable[None]], extra: dict[str, Any] | None = None
) -> None:
    async def main() -> None:
        port = free_port()
        config_data = {**CONFIG, **(extra or {}), "http_server": {"port": port}}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.json"
            path.write_text(json.dumps(config_data))
            config = load_config(path, environ={})[0]
        node = Node(config)
        await node.start()
        server = Server(node)
        await server.start()
        try:
            await test(server, port)
        finally:
            while Stream.opened:
                Stream.opened.pop().close()
            await server.shutdown(2.0)
            node.timers.close()

    asyncio.run(main())


def _all_released(server: Server) -> None:
    node = server.node
    assert server.emulation is not None and server.emulation.sessions == {}
    assert node.hub.num_clients == 0 and node.hub.num_subscriptions == 0
    assert node.flush_scheduler.pending_count() == 0


def test_emulation_sessions_are_freed() -> None:
    async def test(server: Server, port: int) -> None:
        assert server.emulation is not None
        sessions = server.emulation.sessions
        streams: list[Stream] = []
        connects: list[dict[str, Any]] = []
        for i in range(6):
            batch = json.dumps({"id": 1, "connect": {}}).encode()
            if i % 2:
                stream = await Stream.open(port, "POST", "/connection/sse", batch)
                assert await stream.head() == 200
                await stream.until(b"\n")  # the empty line that opens the stream
                event = await stream.until(b"\n\n")
                connect = json.loads(event.removeprefix(b"data: "))["connect"]
            else:
                stream = await Stream.open(port, "POST", "/connection/http_stream", batch)
                assert await stream.head() == 200
                connect = (await stream.json_line())["connect"]
            streams.append(stream)
            connects.append(connect)
            sub = json.dumps({"id": 2, "subscribe": {"channel": f"room{i % 2}"}})
            request = {"session": connect["session"], "node": connect["node"], "data": sub}
            assert await _post(port, "/emulation", json.dumps(request).encode()) == 204
        await _eventually(lambda: server.node.hub.num_subscriptions == 6, "6 subscriptions")
        transports: list[StreamClientTransport] = list(sessions.values())
        assert len(transports) == 6 and server.node.hub.num_clients == 6
        # 1. Peers that go away.
        streams[0].close()
        streams[1].close()
        # 2. Server-side disconnects (a disconnect push, then the response ends).
        for connect in connects[2:4]:
            client = server.node.hub.user_clients("")
            for c in client:
                if c.id == connect["client"]:
                    c.disconnect(DISCONNECT_FORCE_NO_RECONNECT)
        # 3. A bad command (3501).
        for connect in connects[4:]:
            request = {"session": connect["session"], "node": connect["node"], "data": "{bad"}
            assert await _post(port, "/emulation", json.dumps(request).encode()) == 204
        for stream in streams[2:]:
            await stream.end()
        await _eventually(lambda: not sessions and server.node.hub.num_clients == 0, "release")
        _all_released(server)
        for transport in transports:
            assert transport.closed and transport.writer.closed
            assert transport.writer.queue is None and transport.writer.queued_bytes == 0
        # The ended responses left keep-alive connections; once the clients close them, none
        # is left.
        for stream in streams:
            stream.close()
        await _eventually(lambda: not server.ctx.connections, "connections closed")

    _run(test)


def test_slow_stream_reader_is_cut_and_its_buffers_freed() -> None:
    async def test(server: Server, port: int) -> None:
        assert server.emulation is not None
        batch = json.dumps({"id": 1, "connect": {}}).encode()
        slow = await Stream.open(port, "POST", "/connection/http_stream", batch, rcvbuf=4096)
        assert await slow.head() == 200
        connect = (await slow.json_line())["connect"]
        (transport,) = server.emulation.sessions.values()
        closed_with: list[Disconnect | None] = []
        close = transport.close

        def record(disconnect: Disconnect | None) -> None:
            closed_with.append(disconnect)
            close(disconnect)

        setattr(transport, "close", record)  # noqa: B010
        sub = json.dumps({"id": 2, "subscribe": {"channel": "firehose"}})
        request = {"session": connect["session"], "node": connect["node"], "data": sub}
        assert await _post(port, "/emulation", json.dumps(request).encode()) == 204
        await _eventually(lambda: server.node.hub.num_subscriptions == 1, "subscription")
        blob = json.dumps({"blob": "x" * 32000}).encode()
        for _ in range(100):  # never read by the client
            await server.node.publish("firehose", blob)
            await asyncio.sleep(0)
            if transport.closed:
                break
        await _eventually(lambda: server.node.hub.num_clients == 0, "slow reader cut")
        assert closed_with == [DISCONNECT_SLOW]
        _all_released(server)
        assert transport.writer.closed and transport.writer.queue is None
        await _eventually(lambda: not server.ctx.connections, "connection dropped")
        slow.close()

    _run(test)


def test_unidirectional_streams_are_freed() -> None:
    async def test(server: Server, port: int) -> None:
        streams = []
        for path in ("/connection/uni_http_stream", "/connection/uni_sse"):
            for _ in range(2):
                stream = await Stream.open(port, "POST", path, b"{}")
                assert await stream.head() == 200
                assert b"connect" in await stream.until(b"}}\n")
                streams.append(stream)
        await _eventually(lambda: server.node.hub.num_clients == 4, "4 clients")
        streams[0].close()
        streams[2].close()
        server.node.disconnect_user("", DISCONNECT_FORCE_NO_RECONNECT)
        await streams[1].end()
        await streams[3].end()
        await _eventually(lambda: server.node.hub.num_clients == 0, "release")
        _all_released(server)

    _run(test)


def test_sockjs_sessions_are_freed() -> None:
    async def test(server: Server, port: int) -> None:
        sockjs = server.sockjs
        assert sockjs is not None
        sockjs.disconnect_delay = 0.3
        prefix = "/connection/sockjs/0"
        connect = json.dumps([json.dumps({"id": 1, "connect": {}})]).encode()
        # A polling client that connects, then stops polling.
        poll = await Stream.open(port, "POST", f"{prefix}/gone/xhr")
        assert await poll.head() == 200
        assert await poll.until(b"\n") == b"o\n"
        assert await _post(port, f"{prefix}/gone/xhr_send", connect) == 204
        # A streaming client disconnected by the server.
        stream = await Stream.open(port, "POST", f"{prefix}/kicked/xhr_streaming")
        assert await stream.head() == 200
        await stream.until(b"o\n")
        assert await _post(port, f"{prefix}/kicked/xhr_send", connect) == 204
        assert b"connect" in await stream.until(b"\n")
        # A streaming client whose connection drops.
        dropped = await Stream.open(port, "POST", f"{prefix}/dropped/xhr_streaming")
        assert await dropped.head() == 200
        await dropped.until(b"o\n")
        assert await _post(port, f"{prefix}/dropped/xhr_send", connect) == 204
        assert b"connect" in await dropped.until(b"\n")
        await _eventually(lambda: server.node.hub.num_clients == 3, "3 clients")
        assert set(sockjs.sessions) == {"gone", "kicked", "dropped"}
        for client in server.node.hub.clients():
            if client.transport is sockjs.sessions["kicked"]:
                client.disconnect(DISCONNECT_FORCE_NO_RECONNECT)
        assert await stream.until(b"\n") == b'c[3503,"force disconnect"]\n'
        dropped.close()
        await _eventually(lambda: server.node.hub.num_clients == 0, "clients gone")
        await _eventually(lambda: not sockjs.sessions, "sessions forgotten")
        assert server.node.flush_scheduler.pending_count() == 0
        poll.close()
        stream.close()

    _run(test)
