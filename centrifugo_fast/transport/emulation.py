"""Bidirectional emulation: HTTP-streaming and SSE, plus `POST /emulation`
(spec/client-protocol.md §9.2-9.4).

The client opens a stream with its connect command (`POST /connection/http_stream`, or
`GET /connection/sse?cf_connect=...`); the connect reply carries a `session` and this node's
id. Every later command (pongs included) arrives as `POST /emulation` with that session and
node, is fed to the session's Client, and is answered on the stream; the POST itself gets 204.

Several nodes behind a balancer: a request naming another node is forwarded to that node
over the control bus (`EmulationData`, addressed to that node only) and answered 204 once
sent; the node holding the stream feeds it to the session's Client. A node that is not
live (not announced within NODE_TTL) gets 404, which makes the SDK reconnect; an engine
failure while forwarding gets 500 (Centrifugo answers both the same way).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import msgspec

from ..core.node import Node
from ..engine.base import EngineUnavailable
from ..protocol.codec import Codec, CodecError
from ..protocol.codec_json import JSON
from ..protocol.codec_protobuf import PROTOBUF, decode_emulation_request
from ..protocol.http11 import text_response
from ..protocol.messages import Command
from .client_stream import (
    StreamClientTransport,
    line_frame,
    raw_frame,
    register_stream_encoding,
    sse_frame,
)
from .cors import (
    SSE_CONTENT_TYPE,
    STREAM_HEADERS,
    Cors,
    forbidden,
    method_not_allowed,
    query_value,
)
from .http import Request, StreamResponse

logger = logging.getLogger("centrifugo_fast.emulation")

PROTOBUF_CONTENT_TYPE = "application/octet-stream"


class _JsonEmulationRequest(msgspec.Struct):
    session: str = ""
    node: str = ""
    #: The command batch as text (a JSON string on the wire).
    data: str = ""


_json_request = msgspec.json.Decoder(_JsonEmulationRequest)


def wants_protobuf(request: Request) -> bool:
    """`Content-Type: application/octet-stream` selects Protobuf (spec §2.3)."""
    content_type = request.headers.get("content-type", "")
    return content_type.split(";", 1)[0].strip().lower() == PROTOBUF_CONTENT_TYPE


def decode_connect(codec: Codec, data: bytes) -> list[Command] | None:
    """The command batch that opens a connection; None unless it starts with a connect."""
    try:
        commands = codec.decode_commands(data)
    except CodecError:
        return None
    if commands[0].connect is None:
        return None
    return commands


class EmulationEndpoints:
    """The handlers of `/connection/http_stream`, `/connection/sse` and `/emulation`."""

    def __init__(
        self,
        node: Node,
        cors: Cors,
        admit: Callable[[], bool] | None,
        header_user: Callable[[Request], str],
    ) -> None:
        self.node = node
        self.cors = cors
        self.admit = admit
        self.header_user = header_user
        #: Open emulation sessions of this node: session id -> transport.
        self.sessions: dict[str, StreamClientTransport] = {}
        self._keys = {
            ("http_stream", "json"): register_stream_encoding(
                node, "http_stream", JSON, line_frame
            ),
            ("http_stream", "protobuf"): register_stream_encoding(
                node, "http_stream", PROTOBUF, raw_frame
            ),
            ("sse", "json"): register_stream_encoding(node, "sse", JSON, sse_frame),
        }
        node.on_emulation(self._deliver)

    def _deliver(self, session: str, data: bytes) -> None:
        """Feed a command batch to one of this node's sessions (dropped if it is gone)."""
        transport = self.sessions.get(session)
        if transport is not None and transport.client is not None:
            transport.client.handle_data(data)
        else:
            logger.debug("emulation request for unknown session %r dropped", session)

    def _refused(self) -> bytes | None:
        """503 while shutting down or over the connection admission limits."""
        if self.node.closing or (self.admit is not None and not self.admit()):
            return text_response(503, "too many new connections", keep_alive=False)
        return None

    def _open(
        self,
        request: Request,
        name: str,
        codec: Codec,
        commands: list[Command],
        headers: list[tuple[str, str]],
        prelude: bytes = b"",
    ) -> StreamResponse:
        transport = StreamClientTransport(
            self.node,
            name,
            codec,
            sse_frame if name == "sse" else line_frame if codec is JSON else raw_frame,
            self._keys[(name, codec.name)],
            unidirectional=False,
            sessions=self.sessions,
            header_user=self.header_user(request),
        )
        return StreamResponse(
            [*headers, *STREAM_HEADERS],
            lambda stream: transport.start(stream, commands, prelude),
        )

    async def http_stream(self, request: Request) -> bytes | StreamResponse:
        """`POST /connection/http_stream` with the connect batch as body."""
        if request.method == "OPTIONS":
            return self.cors.preflight(request, "POST, OPTIONS")
        if request.method != "POST":
            return method_not_allowed("POST, OPTIONS")
        cors = self.cors.headers(request)
        if cors is None:
            return forbidden()
        refused = self._refused()
        if refused is not None:
            return refused
        codec: Codec = PROTOBUF if wants_protobuf(request) else JSON
        commands = decode_connect(codec, request.body)
        if commands is None:
            return text_response(400, "malformed connect request", keep_alive=False)
        content_type = PROTOBUF_CONTENT_TYPE if codec is PROTOBUF else "application/json"
        headers = [*cors, ("Content-Type", content_type)]
        return self._open(request, "http_stream", codec, commands, headers)

    async def sse(self, request: Request) -> bytes | StreamResponse:
        """`GET /connection/sse?cf_connect=<batch>`, or POST with the batch as body."""
        if request.method == "OPTIONS":
            return self.cors.preflight(request, "GET, POST, OPTIONS")
        if request.method == "GET":
            value = query_value(request.query, "cf_connect")
            if not value:
                return text_response(400, "cf_connect required", keep_alive=False)
            data = value.encode()
        elif request.method == "POST":
            data = request.body
        else:
            return method_not_allowed("GET, POST, OPTIONS")
        cors = self.cors.headers(request)
        if cors is None:
            return forbidden()
        refused = self._refused()
        if refused is not None:
            return refused
        commands = decode_connect(JSON, data)
        if commands is None:
            return text_response(400, "malformed connect request", keep_alive=False)
        # The stream opens with an empty line, flushed before the connect reply. A bare LF,
        # not Centrifugo's CRLF: a proxy (nginx) may join it with the first event into one
        # chunk, and the `eventsource` 2.x polyfill for Node then drops that event ("\r\n"
        # followed by more data in one read leaves it skipping the event's closing LF).
        return self._open(request, "sse", JSON, commands, [*cors, SSE_CONTENT_TYPE], b"\n")

    async def emulation(self, request: Request) -> bytes:
        """`POST /emulation`: feed a command batch to the session's Client; 204."""
        if request.method == "OPTIONS":
            return self.cors.preflight(request, "POST, OPTIONS")
        if request.method != "POST":
            return method_not_allowed("POST, OPTIONS")
        if self.cors.headers(request) is None:
            return forbidden()
        try:
            if wants_protobuf(request):
                pb = decode_emulation_request(request.body)
                session, node, data = pb.session, pb.node, bytes(pb.data)
            else:
                js = _json_request.decode(request.body)
                session, node, data = js.session, js.node, js.data.encode()
        except (CodecError, msgspec.DecodeError, msgspec.ValidationError):
            return self.cors.response(request, 400, b"bad request\n")
        if node == self.node.id:
            self._deliver(session, data)
            return self.cors.response(request, 204)
        if not self.node.node_alive(node):
            return self.cors.response(request, 404, b"unknown node\n")
        try:
            await self.node.forward_emulation(node, session, data)
        except EngineUnavailable as exc:
            logger.warning("emulation request for node %s not forwarded: %s", node, exc)
            return self.cors.response(request, 500, b"not forwarded\n")
        return self.cors.response(request, 204)
