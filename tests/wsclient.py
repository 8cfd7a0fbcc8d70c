"""A blocking, byte-exact WebSocket client for protocol tests (including malformed input)."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from typing import Any


class ConnectionClosedError(Exception):
    """The server closed the TCP connection."""


def build_frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    length_override: int | None = None,
) -> bytes:
    """One client frame (masked unless told otherwise)."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload) if length_override is None else length_override
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not mask:
        return header + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + masked


_OPEN: list[RawWebSocket] = []


def close_all() -> None:
    """Close every client a test opened (an autouse fixture calls this)."""
    while _OPEN:
        _OPEN.pop().close()


class RawWebSocket:
    """A WebSocket client over a plain socket; every call has a timeout."""

    def __init__(
        self, host: str, port: int, timeout: float = 5.0, *, rcvbuf: int | None = None
    ) -> None:
        if rcvbuf is None:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        else:
            # Set before connecting so the advertised TCP window stays small.
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        self.buf = b""
        _OPEN.append(self)

    # ---- handshake ----

    def handshake(
        self,
        path: str = "/connection/websocket",
        headers: dict[str, str] | None = None,
        *,
        method: str = "GET",
    ) -> tuple[int, dict[str, str], bytes]:
        """Send an upgrade request; return (status, headers, body-so-far)."""
        all_headers = {
            "Host": "127.0.0.1",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
            "Sec-WebSocket-Version": "13",
        }
        for key, value in (headers or {}).items():
            all_headers.pop(key, None)
            if value is not None:
                all_headers[key] = value
        request = f"{method} {path} HTTP/1.1\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in all_headers.items()
        )
        self.sock.sendall(request.encode() + b"\r\n")
        return self.read_http_response()

    def read_http_response(self) -> tuple[int, dict[str, str], bytes]:
        """Read a response head (and the body when Content-Length says so)."""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def open(self, path: str = "/connection/websocket", **headers: str) -> RawWebSocket:
        """Handshake and assert it succeeded."""
        status, _, body = self.handshake(path, headers)
        assert status == 101, (status, body)
        return self

    # ---- frames ----

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionClosedError("server closed the connection")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are."""
        self.sock.sendall(data)

    def send_frame(self, opcode: int, payload: bytes, **kwargs: Any) -> None:
        """Send one frame (see build_frame for options)."""
        self.sock.sendall(build_frame(opcode, payload, **kwargs))

    def recv_frame(self) -> tuple[int, bytes]:
        """Receive one server frame: (opcode, payload)."""
        first, second = self._take(2)
        assert second & 0x80 == 0, "server frames must not be masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8))
        return first & 0x0F, self._take(length)

    def recv_close(self) -> tuple[int, str]:
        """Skip data frames until a close frame; return (code, reason)."""
        while True:
            opcode, payload = self.recv_frame()
            if opcode == 8:
                if len(payload) < 2:
                    return 1005, ""
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()

    def close_code(self) -> int:
        """The code of the server's close frame (skipping anything before it)."""
        return self.recv_close()[0]

    def expect_eof(self) -> None:
        """Assert the server closes the TCP connection."""
        try:
            while True:
                self._fill()
        except ConnectionClosedError:
            return

    # ---- Centrifugo JSON protocol ----

    def send_json(self, *commands: dict[str, Any]) -> None:
        """Send commands newline-joined in one text frame."""
        payload = "\n".join(json.dumps(c, separators=(",", ":")) for c in commands)
        self.send_frame(1, payload.encode())

    def recv_json(self) -> list[dict[str, Any]]:
        """Receive one text frame and decode its newline-joined replies."""
        opcode, payload = self.recv_frame()
        if opcode == 8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            raise AssertionError(f"expected replies, got close {code} {payload[2:]!r}")
        assert opcode == 1, f"JSON must come in text frames, got opcode {opcode}"
        return [json.loads(line) for line in payload.decode().split("\n")]

    def reply(self, cmd_id: int) -> dict[str, Any]:
        """Receive until the reply with `cmd_id`, skipping pushes and pings."""
        while True:
            for item in self.recv_json():
                if item.get("id") == cmd_id:
                    return item

    def push(self) -> dict[str, Any]:
        """Receive until a push arrives; return its `push` object."""
        while True:
            for item in self.recv_json():
                if "push" in item:
                    push: dict[str, Any] = item["push"]
                    return push

    def connect(self, token: str = "", **fields: Any) -> dict[str, Any]:
        """Send connect (id 1) and return the reply."""
        body = dict(fields)
        if token:
            body["token"] = token
        self.send_json({"id": 1, "connect": body})
        return self.reply(1)

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()
