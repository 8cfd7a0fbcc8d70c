"""A blocking HTTP/1.1 client for streamed responses (chunked bodies read as they arrive).

Used by the HTTP-streaming, SSE, unidirectional and SockJS tests: send one request, read the
response head, then read the body chunk by chunk, line by line (newline-delimited JSON) or
event by event (Server-Sent Events).
"""

from __future__ import annotations

import json
import socket
from typing import Any

from tests.wsclient import ConnectionClosedError

_OPEN: list[HttpStreamClient] = []


def close_all() -> None:
    """Close every client a test opened."""
    while _OPEN:
        _OPEN.pop().close()


class HttpStreamClient:
    """One connection; every call has a timeout."""

    def __init__(
        self, host: str, port: int, timeout: float = 5.0, *, rcvbuf: int | None = None
    ) -> None:
        self.host = host
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        #: The current response: status and lower-case headers.
        self.status = 0
        self.headers: dict[str, str] = {}
        self._chunked = False
        self._left = -1  # bytes left of a Content-Length body; -1: until the connection ends
        self._body = b""  # body bytes received and not consumed yet
        self.ended = False
        _OPEN.append(self)

    # ---- request ----

    def send_request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Send one request (Content-Length set when there is a body or for POST)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> int:
        """Send a request and read the response head; return the status."""
        self.send_request(method, path, body, headers)
        return self.read_head()

    # ---- response ----

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosedError("server closed the connection")
        self.buf += chunk

    def read_head(self) -> int:
        """Read a response head; return its status."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        self._left = int(self.headers.get("content-length", "-1"))
        if self.status in (204, 304):
            self._left = 0
        self._body = b""
        self.ended = not self._chunked and self._left == 0
        return self.status

    def _read_more(self) -> None:
        """Move at least one more byte of body into `_body` (or mark the body ended)."""
        if self.ended:
            raise AssertionError("the response body already ended")
        if self._chunked:
            while b"\r\n" not in self.buf:
                self._fill()
            size_line, rest = self.buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                self._fill()
                rest = self.buf.split(b"\r\n", 1)[1]
            if size == 0:
                self.buf = rest[2:]
                self.ended = True
                return
            self._body += rest[:size]
            self.buf = rest[size + 2 :]
            return
        if self._left >= 0:
            if not self.buf:
                self._fill()
            take = self.buf[: self._left]
            self.buf = self.buf[len(take) :]
            self._left -= len(take)
            self._body += take
            self.ended = self._left == 0
            return
        try:
            self._fill()
        except ConnectionClosedError:
            self.ended = True
            return
        self._body += self.buf
        self.buf = b""

    def read_body(self) -> bytes:
        """Read the rest of the body."""
        while not self.ended:
            self._read_more()
        body, self._body = self._body, b""
        return body

    def read_until(self, delimiter: bytes) -> bytes:
        """Body bytes up to and including `delimiter`."""
        while delimiter not in self._body:
            self._read_more()
            if self.ended and delimiter not in self._body:
                raise AssertionError(f"body ended before {delimiter!r}: {self._body!r}")
        head, _, self._body = self._body.partition(delimiter)
        return head + delimiter

    def read_exact(self, n: int) -> bytes:
        """Exactly `n` body bytes."""
        while len(self._body) < n:
            self._read_more()
            if self.ended and len(self._body) < n:
                raise AssertionError(f"body ended after {self._body!r}")
        data, self._body = self._body[:n], self._body[n:]
        return data

    def read_delimited(self) -> bytes:
        """One varint-length-delimited message of the body (without its prefix)."""
        length = shift = 0
        while True:
            byte = self.read_exact(1)[0]
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return self.read_exact(length)

    def read_line(self) -> bytes:
        """One line of the body, without its newline."""
        return self.read_until(b"\n")[:-1]

    def read_json(self) -> dict[str, Any]:
        """One newline-delimited JSON object of the body."""
        value: dict[str, Any] = json.loads(self.read_line())
        return value

    def read_event(self) -> dict[str, Any]:
        """The JSON data of the next Server-Sent Event (blank lines before it skipped)."""
        while True:
            event = self.read_until(b"\n\n").strip(b"\r\n")
            if not event:
                continue
            data = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line[:5] == b"data:"]
            value: dict[str, Any] = json.loads(b"\n".join(data))
            return value

    def expect_end(self) -> bytes:
        """Read until the body ends; return what came before the end."""
        return self.read_body()

    def expect_closed(self) -> None:
        """Assert the server closes or drops the TCP connection."""
        try:
            while True:
                self._fill()
        except (ConnectionClosedError, ConnectionResetError):
            return

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
