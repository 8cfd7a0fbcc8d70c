"""Decoding and dispatch of server API calls: single methods, `batch`, and legacy `POST /api`.

Every front end (HTTP API, admin UI) goes through ApiDispatcher, so request decoding, error
mapping and batch semantics live in one place.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from msgspec import Raw

from .. import codes
from ..codes import ReplyError
from ..engine.base import EngineUnavailable
from ..errors import ReplyErrorException
from ..protocol.messages import ErrorMsg
from .methods import ApiMethods

logger = logging.getLogger("centrifugo_fast.api")

#: Legacy method numbers (apiproto MethodType) for `{"method": 0}` style commands.
LEGACY_METHODS = (
    "publish",
    "broadcast",
    "unsubscribe",
    "disconnect",
    "presence",
    "presence_stats",
    "history",
    "history_remove",
    "channels",
    "info",
    "rpc",
    "subscribe",
    "refresh",
)
#: Concurrency bound of `batch` with `parallel: true` (as Centrifugo).
MAX_PARALLEL = 1024

_encoder = msgspec.json.Encoder()


class BadRequestBody(Exception):
    """The body is not valid for the method: the HTTP API answers 400."""


class BatchRequest(msgspec.Struct, kw_only=True):
    commands: list[dict[str, Raw] | None] = []
    parallel: bool = False


class LegacyCommand(msgspec.Struct, kw_only=True):
    id: int = 0
    method: str | int = 0
    params: Raw = Raw(b"{}")


def _error_msg(error: ReplyError) -> ErrorMsg:
    return ErrorMsg(code=error.code, message=error.message)


class ApiDispatcher:
    """Calls ApiMethods from encoded requests and encodes the answers."""

    def __init__(self, methods: ApiMethods) -> None:
        self.methods = methods
        self._decoders = {
            name: msgspec.json.Decoder(req_type) for name, (req_type, _) in methods.methods.items()
        }
        self._batch_decoder = msgspec.json.Decoder(BatchRequest)
        self._legacy_decoder = msgspec.json.Decoder(LegacyCommand)

    def knows(self, method: str) -> bool:
        """True for a method served at `{prefix}/{method}` (batch included)."""
        return method == "batch" or method in self._decoders

    def decode(self, method: str, body: bytes) -> Any:
        """Decode a method's request body; BadRequestBody when it is not valid."""
        try:
            return self._decoders[method].decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise BadRequestBody(str(exc)) from exc

    async def call(self, method: str, request: Any) -> msgspec.Struct | ReplyError:
        """Run one decoded request; an API-level failure is returned as a ReplyError."""
        _, handler = self.methods.methods[method]
        try:
            result: msgspec.Struct = await handler(request)
            return result
        except ReplyErrorException as exc:
            return exc.error
        except EngineUnavailable as exc:
            logger.warning("API method %s: engine unavailable: %s", method, exc)
            return codes.ERROR_INTERNAL
        except Exception:
            logger.exception("API method %s failed", method)
            return codes.ERROR_INTERNAL

    async def _call_raw(self, method: str, params: bytes) -> msgspec.Struct | ReplyError:
        try:
            request = self.decode(method, params)
        except BadRequestBody:
            return codes.ERROR_BAD_REQUEST
        return await self.call(method, request)

    # ---- batch ----

    async def batch(self, body: bytes) -> bytes:
        """`{"commands":[{"method":{...}}...]}` -> `{"replies":[...]}` in request order."""
        try:
            req = self._batch_decoder.decode(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise BadRequestBody(str(exc)) from exc

        async def one(command: dict[str, Raw] | None) -> bytes:
            if command is None:
                return b'{"error":' + _encoder.encode(_error_msg(codes.ERROR_BAD_REQUEST)) + b"}"
            method = next((m for m in command if m in self._decoders), None)
            if method is None:
                error = _error_msg(codes.API_ERROR_NOT_FOUND)
                return b'{"error":' + _encoder.encode(error) + b"}"
            outcome = await self._call_raw(method, bytes(command[method]))
            if isinstance(outcome, ReplyError):
                return b'{"error":' + _encoder.encode(_error_msg(outcome)) + b"}"
            return b'{"' + method.encode() + b'":' + _encoder.encode(outcome) + b"}"

        if req.parallel:
            limit = asyncio.Semaphore(MAX_PARALLEL)

            async def bounded(command: dict[str, Raw] | None) -> bytes:
                async with limit:
                    return await one(command)

            replies = await asyncio.gather(*(bounded(c) for c in req.commands))
        else:
            replies = [await one(c) for c in req.commands]
        return b'{"replies":[' + b",".join(replies) + b"]}"

    # ---- legacy single endpoint ----

    async def legacy(self, body: bytes) -> bytes:
        """Newline-delimited `{"id","method","params"}` -> newline-joined replies."""
        if not body.strip():
            raise BadRequestBody("empty body")
        try:
            commands = self._legacy_decoder.decode_lines(body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise BadRequestBody(str(exc)) from exc
        replies = []
        for cmd in commands:
            prefix = b'{"id":' + str(cmd.id).encode() + b"," if cmd.id else b"{"
            method = self._legacy_method(cmd.method)
            if method is None:
                outcome: msgspec.Struct | ReplyError = codes.API_ERROR_NOT_FOUND
            else:
                outcome = await self._call_raw(method, bytes(cmd.params))
            if isinstance(outcome, ReplyError):
                replies.append(prefix + b'"error":' + _encoder.encode(_error_msg(outcome)) + b"}")
            else:
                replies.append(prefix + b'"result":' + _encoder.encode(outcome) + b"}")
        return b"\n".join(replies)

    def _legacy_method(self, method: str | int) -> str | None:
        if isinstance(method, int):
            return LEGACY_METHODS[method] if 0 <= method < len(LEGACY_METHODS) else None
        name = method.lower()
        return name if name in LEGACY_METHODS else None
