"""CORS, origin checks and common response headers of the HTTP-based client transports.

Origin policy as for WebSocket (design.md §10): a request without an Origin header passes; one
with an Origin passes only when it matches `client.allowed_origins`, and then gets it echoed
in Access-Control-Allow-Origin. A refused Origin is answered 403.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from ..protocol.handshake import origin_allowed
from ..protocol.http11 import render_response, text_response
from .http import Request

#: Headers of every streaming response (HTTP-streaming, SSE, their unidirectional twins).
NO_CACHE = [
    ("Cache-Control", "private, no-cache, no-store, must-revalidate, max-age=0"),
    ("Pragma", "no-cache"),
    ("Expire", "0"),
]
STREAM_HEADERS = [*NO_CACHE, ("X-Accel-Buffering", "no")]
SSE_CONTENT_TYPE = ("Content-Type", "text/event-stream; charset=utf-8")
#: How long a browser may cache a preflight answer.
PREFLIGHT_MAX_AGE = "300"
#: Request body limit of every connect/emulation/send endpoint (413 beyond).
MAX_BODY_SIZE = 65536


class Cors:
    """The origin policy of one listener."""

    def __init__(self, allowed_origins: list[str] | tuple[str, ...]) -> None:
        self.allowed_origins = tuple(allowed_origins)

    def headers(self, request: Request) -> list[tuple[str, str]] | None:
        """CORS headers for the response; None when the Origin is refused."""
        origin = request.headers.get("origin")
        if origin is None:
            return []
        if not origin_allowed(origin, self.allowed_origins):
            return None
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Credentials", "true"),
            ("Vary", "Origin"),
        ]

    def preflight(self, request: Request, methods: str) -> bytes:
        """The answer to an OPTIONS request: 204 with the allowed methods and headers."""
        cors = self.headers(request)
        if cors is None:
            return forbidden()
        asked = request.headers.get("access-control-request-headers", "")
        headers = [
            *cors,
            ("Access-Control-Allow-Methods", methods),
            ("Access-Control-Allow-Headers", asked or "Content-Type"),
            ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE),
        ]
        return render_response(204, headers, content_length=False)

    def response(
        self,
        request: Request,
        status: int,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
    ) -> bytes:
        """A complete response with the CORS headers (403 when the Origin is refused)."""
        cors = self.headers(request)
        if cors is None:
            return forbidden()
        # A 204 has no body and, by RFC 9110, no Content-Length either.
        return render_response(
            status, [*cors, *(headers or ())], body, content_length=status != 204
        )


def forbidden() -> bytes:
    """The answer to a request from a refused Origin."""
    return text_response(403, "request origin not allowed", keep_alive=False)


def method_not_allowed(allow: str) -> bytes:
    """405 with the Allow header."""
    body = b"method not allowed\n"
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Allow", allow)]
    return render_response(405, headers, body)


def query_value(query: str, name: str) -> str | None:
    """The first value of one query parameter (URL-decoded), or None when absent."""
    values = parse_qs(query, keep_blank_values=True).get(name)
    return values[0] if values else None
