"""Admin HTTP endpoints and the static pages (spec/server-api.md §7).

Routes, relative to `admin.handler_prefix` (default: the listener's root):

| path | method | what |
|---|---|---|
| `/` | GET | the single-page admin app (`web/index.html`) |
| `/admin/static/<file>` | GET | its assets, shipped inside the package |
| `/admin/init` | any | `{"insecure", "edition", "authenticated"}`: does the page need a login |
| `/admin/auth` | POST | form field `password` -> `{"token", "expires"}`; 400 wrong, 429 locked |
| `/admin/auth/refresh` | POST | a fresh token for a valid one (the page renews before expiry) |
| `/admin/logout` | POST | revoke the token and close its live tails |
| `/admin/config` | GET | the running configuration, secrets masked |
| `/admin/api` | POST | legacy API format (newline-delimited `{"method","params"}`), as Centrifugo |
| `/admin/api/<method>` | POST | one server API method (or `batch`), as `POST /api/<method>` |
| `/admin/tail` | WebSocket | live tail of a channel's publications (`tail.py`) |

Every endpoint except the pages, `init` and `auth` needs `Authorization: token <token>`
unless `admin.insecure` is set.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import hmac
import ipaddress
import logging
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from ..api.dispatch import ApiDispatcher
from ..api.http import HttpApi
from ..config.schema import AdminConfig, Config, HttpApiConfig
from ..core.node import Node
from ..protocol.handshake import Accepted, HandshakePolicy
from ..protocol.http11 import render_response, text_response
from ..transport.http import Request, Router, WebSocketRoute
from ..transport.websocket import WebSocketLimits
from .auth import AdminToken, AdminTokens, LoginGuard
from .config_view import masked_config
from .tail import TailHandler

logger = logging.getLogger("centrifugo_fast.admin")

#: Login bodies larger than this are refused (a password form is tiny).
MAX_LOGIN_BODY = 1 << 20
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: The pages load nothing from elsewhere (they work offline) and cannot be framed.
_PAGE_HEADERS = [
    (
        "Content-Security-Policy",
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]
_JSON_HEADERS = [
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
]
_encoder = msgspec.json.Encoder()


def _load_assets() -> dict[str, tuple[bytes, str]]:
    """Every file of `web/` in memory, by name: served from a fixed table, never from a path."""
    assets = {}
    for entry in resources.files(__package__).joinpath("web").iterdir():
        name = entry.name
        suffix = name[name.rfind(".") :] if "." in name else ""
        if entry.is_file() and suffix in _STATIC_TYPES:
            assets[name] = (entry.read_bytes(), _STATIC_TYPES[suffix])
    return assets


def _json(status: int, body: Any, extra: list[tuple[str, str]] | None = None) -> bytes:
    return render_response(status, _JSON_HEADERS + (extra or []), _encoder.encode(body))


def _peer(request: Request) -> str:
    """Whom failed logins are counted against: the client's IPv4 address, or its IPv6 /64
    (one host usually owns a whole /64, so single IPv6 addresses cost an attacker nothing).
    Connections without an address (a unix socket) share one count."""
    try:
        address = ipaddress.ip_address(request.peer)
    except ValueError:
        return "*"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _password(request: Request) -> str | None:
    """The `password` field of a urlencoded, multipart or JSON login body."""
    ctype = request.headers.get("content-type", "").lower()
    body = request.body
    if ctype.startswith("application/json"):
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError:
            return None
        value = data.get("password") if isinstance(data, dict) else None
        return value if isinstance(value, str) else None
    if ctype.startswith("multipart/form-data"):
        head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode("latin-1")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "password":
                payload = part.get_payload(decode=True)
                return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None
        return None
    values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).get("password")
    return values[0] if values else None


class AdminUi:
    """The admin web interface of one node."""

    def __init__(self, node: Node, dispatcher: ApiDispatcher, config: AdminConfig) -> None:
        self.node = node
        self.config = config
        self.prefix = config.handler_prefix.rstrip("/")
        self.tokens = AdminTokens(config.secret)
        self.guard = LoginGuard()
        self.tails: set[TailHandler] = set()
        self._assets = _load_assets()
        self._api = HttpApi(
            dispatcher, HttpApiConfig(insecure=True, handler_prefix=f"{self.prefix}/admin/api")
        )
        if not config.insecure and not (config.password and config.secret):
            logger.warning(
                "admin.enabled but admin.password or admin.secret is empty: nobody can log in "
                "(set both, or admin.insecure for local use only)"
            )
        if config.insecure:
            logger.warning("admin.insecure: the admin interface and its API need no login")

    def register(self, router: Router) -> None:
        """Add the admin routes to a listener's router."""
        p = self.prefix
        router.add(p + "/", self._index)
        if p:
            router.add(p, self._redirect)
        router.add(p + "/admin", self, prefix=True)
        router.add_websocket(
            p + "/admin/tail",
            WebSocketRoute(
                policy=HandshakePolicy(check_origin=False),
                limits=WebSocketLimits(max_message_size=4096, max_queue_size=1 << 20),
                handler_factory=self._tail_handler,
            ),
        )

    # ---- auth ----

    def claims(self, request: Request) -> AdminToken | None:
        """The token of `Authorization: token <t>` when valid; a dummy one in insecure mode."""
        if self.config.insecure:
            return AdminToken("", 0)
        header = request.headers.get("authorization", "")
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != "token":
            return None
        return self.tokens.verify(parts[1])

    def _verify_tail_token(self, token: str) -> AdminToken | None:
        return self.tokens.verify(token)

    # ---- routes ----

    async def _index(self, request: Request) -> bytes:
        if request.method not in ("GET", "HEAD"):
            return render_response(405, [("Allow", "GET")])
        body, ctype = self._assets["index.html"]
        headers = [("Content-Type", ctype), ("Cache-Control", "no-cache"), *_PAGE_HEADERS]
        return render_response(200, headers, body if request.method == "GET" else b"")

    async def _redirect(self, request: Request) -> bytes:
        return render_response(301, [("Location", self.prefix + "/")])

    async def __call__(self, request: Request) -> bytes:
        path = request.path[len(self.prefix) + len("/admin") :]
        if path.startswith("/static/"):
            return self._static(request, path[len("/static/") :])
        if path == "/init":
            return self._init(request)
        if path == "/auth":
            return await self._login(request)
        if path == "/api" or path.startswith("/api/"):
            if self.claims(request) is None:
                return render_response(401)
            return await self._api(request)
        claims = self.claims(request)
        if path == "/auth/refresh":
            return self._refresh(request, claims)
        if path == "/logout":
            return self._logout(request, claims)
        if path == "/config":
            if claims is None:
                return render_response(401)
            if request.method != "GET":
                return render_response(405, [("Allow", "GET")])
            return _json(200, masked_config(self.node.config))
        return text_response(404)

    def _static(self, request: Request, name: str) -> bytes:
        if request.method not in ("GET", "HEAD"):
            return render_response(405, [("Allow", "GET")])
        asset = self._assets.get(name)
        if asset is None:
            return text_response(404)
        body, ctype = asset
        headers = [
            ("Content-Type", ctype),
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
        ]
        return render_response(200, headers, body if request.method == "GET" else b"")

    def _init(self, request: Request) -> bytes:
        return _json(
            200,
            {
                "insecure": self.config.insecure,
                "edition": "oss",
                "authenticated": self.claims(request) is not None,
                "server": "centrifugo-fast",
            },
        )

    async def _login(self, request: Request) -> bytes:
        if request.method != "POST":
            return render_response(405, [("Allow", "POST")])
        if self.config.insecure:
            return _json(200, {"token": "insecure", "expires": 0})
        if not (self.config.password and self.config.secret):
            return text_response(400, "admin.password and admin.secret are not configured")
        if len(request.body) > MAX_LOGIN_BODY:
            return text_response(413)
        peer = _peer(request)
        wait = self.guard.retry_after(peer)
        if wait > 0:
            seconds = int(wait) + 1
            return _json(
                429,
                {"error": "too many failed attempts", "retry_after": seconds},
                [("Retry-After", str(seconds))],
            )
        given = _password(request)
        if given is None or not _password_matches(given, self.config.password):
            self.guard.failed(peer)
            logger.warning("admin login failed (client %s)", peer)
            # Answer failures slowly: with the lockout this bounds guessing to a trickle.
            await asyncio.sleep(self.guard.delay)
            return text_response(400, "wrong password")
        self.guard.succeeded(peer)
        token, fresh = self.tokens.mint()
        logger.info("admin login (client %s)", peer)
        return _json(200, {"token": token, "expires": fresh.exp})

    def _refresh(self, request: Request, claims: AdminToken | None) -> bytes:
        if request.method != "POST":
            return render_response(405, [("Allow", "POST")])
        if claims is None:
            return render_response(401)
        if self.config.insecure:
            return _json(200, {"token": "insecure", "expires": 0})
        self.tokens.revoke(claims)
        token, fresh = self.tokens.mint()
        # Live tails opened with the old token now live as long as the new one.
        for tail in self.tails:
            if tail.claims is not None and tail.claims.nonce == claims.nonce:
                tail.claims = fresh
        return _json(200, {"token": token, "expires": fresh.exp})

    def _logout(self, request: Request, claims: AdminToken | None) -> bytes:
        if request.method != "POST":
            return render_response(405, [("Allow", "POST")])
        if claims is None:
            return render_response(401)
        if not self.config.insecure:
            self.tokens.revoke(claims)
            for tail in list(self.tails):
                if tail.claims is not None and tail.claims.nonce == claims.nonce:
                    tail.revoke()
        return _json(200, {})

    # ---- live tail ----

    def _tail_handler(self, request: Request, accepted: Accepted) -> TailHandler:
        origin = request.headers.get("origin")
        host = request.headers.get("host", "")
        same_origin = origin is None or urlsplit(origin).netloc.lower() == host.lower()
        verify = None if self.config.insecure else self._verify_tail_token
        return TailHandler(self.node, verify, self.tails, same_origin)


def _password_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def admin_ui(node: Node, dispatcher: ApiDispatcher, config: Config) -> AdminUi | None:
    """The admin interface when `admin.enabled`, else None."""
    return AdminUi(node, dispatcher, config.admin) if config.admin.enabled else None
