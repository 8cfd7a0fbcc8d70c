"""The HTTP server API: `POST {prefix}/{method}` with API-key auth (spec/server-api.md §1.1-1.4)."""

from __future__ import annotations

import hmac
import logging
import time
from urllib.parse import parse_qs

import msgspec

from ..codes import ReplyError
from ..config.schema import HttpApiConfig
from ..metrics import Metrics
from ..protocol.http11 import render_response, text_response
from ..protocol.messages import ErrorMsg
from ..transport.http import Request
from .dispatch import ApiDispatcher, BadRequestBody

logger = logging.getLogger("centrifugo_fast.api")

_JSON = [("Content-Type", "application/json")]
#: HTTP status of each API error code in transport error mode (spec §1.4).
_TRANSPORT_STATUS = {100: 500, 102: 404, 104: 404, 107: 400, 108: 400, 112: 416, 113: 409}


class _ErrorEnvelope(msgspec.Struct):
    error: ErrorMsg


_encoder = msgspec.json.Encoder()


def _key_matches(given: str, key: str) -> bool:
    return hmac.compare_digest(given.encode(), key.encode())


class HttpApi:
    """Serves the server API over HTTP for one listener."""

    def __init__(
        self, dispatcher: ApiDispatcher, config: HttpApiConfig, metrics: Metrics | None = None
    ) -> None:
        self._dispatcher = dispatcher
        self._config = config
        #: Where command durations and errors are counted (protocol label "http").
        self._metrics = metrics
        self._prefix = config.handler_prefix.rstrip("/")
        if not config.key and not config.insecure:
            logger.warning("http_api.key is empty: every API request will be refused (401)")

    def authorized(self, request: Request) -> bool:
        """Check X-API-Key, `Authorization: apikey KEY` or the api_key query parameter."""
        if self._config.insecure:
            return True
        key = self._config.key
        if not key:
            return False
        given = request.headers.get("x-api-key")
        if given is not None and _key_matches(given, key):
            return True
        auth = request.headers.get("authorization")
        if auth is not None:
            parts = auth.split()
            if len(parts) == 2 and parts[0].lower() == "apikey" and _key_matches(parts[1], key):
                return True
        if request.query:
            values = parse_qs(request.query).get("api_key")
            if values and _key_matches(values[0], key):
                return True
        return False

    async def __call__(self, request: Request) -> bytes:
        if request.method != "POST":
            return render_response(405, [("Allow", "POST")])
        if not self.authorized(request):
            return render_response(401)
        method = request.path[len(self._prefix) :].strip("/")
        dispatcher = self._dispatcher
        started = time.perf_counter()
        # The metrics label ("" = not counted) and the error label of a failure.
        label = method or "legacy"
        error = ""
        try:
            if not method:
                body = await dispatcher.legacy(request.body)
                return render_response(200, _JSON, body)
            if method == "batch":
                return render_response(200, _JSON, await dispatcher.batch(request.body))
            if not dispatcher.knows(method):
                label = ""  # whatever paths clients try, the label set stays bounded
                return text_response(404, f"unknown API method {method!r}")
            outcome = await dispatcher.call(method, dispatcher.decode(method, request.body))
            if isinstance(outcome, ReplyError):
                error = str(outcome.code)
                return self._error_response(request, outcome)
            return render_response(200, _JSON, b'{"result":' + _encoder.encode(outcome) + b"}")
        except BadRequestBody as exc:
            logger.debug("bad API request body for %r: %s", method, exc)
            error = "unmarshal"
            return text_response(400)
        finally:
            if self._metrics is not None and label:
                self._metrics.api_call("http", label, time.perf_counter() - started, error)

    def _error_response(self, request: Request, error: ReplyError) -> bytes:
        msg = ErrorMsg(code=error.code, message=error.message)
        mode = request.headers.get("x-centrifugo-error-mode", self._config.error_mode)
        if mode == "transport":
            status = _TRANSPORT_STATUS.get(error.code, 500)
            return render_response(status, _JSON, _encoder.encode(msg))
        return render_response(200, _JSON, _encoder.encode(_ErrorEnvelope(error=msg)))
