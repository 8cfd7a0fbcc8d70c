"""HTTP/1.1 response rendering (the request side is parsed by httptools in transport/)."""

from __future__ import annotations

from http import HTTPStatus

#: Reason phrases by status code (HTTPStatus(status) per response showed in connect profiles).
_PHRASES = {status.value: status.phrase for status in HTTPStatus}


def render_response(
    status: int,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    keep_alive: bool = True,
    content_length: bool = True,
) -> bytes:
    """The bytes of a complete HTTP/1.1 response."""
    reason = _PHRASES.get(status, "Unknown")
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in headers or ():
        lines.append(f"{name}: {value}")
    if content_length:
        lines.append(f"Content-Length: {len(body)}")
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def text_response(status: int, text: str = "", *, keep_alive: bool = True) -> bytes:
    """A plain-text response; the body defaults to the status phrase."""
    body = (text or HTTPStatus(status).phrase).encode() + b"\n"
    return render_response(
        status, [("Content-Type", "text/plain; charset=utf-8")], body, keep_alive=keep_alive
    )
