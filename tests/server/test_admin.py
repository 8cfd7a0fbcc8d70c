"""The admin endpoints on a real server: where they are served, login and its throttling, the
token check on every admin API call, the masked config view and the live tail
(spec/server-api.md §7)."""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from centrifugo_fast.admin.auth import AdminTokens
from centrifugo_fast.api.dispatch import LEGACY_METHODS
from tests.serverproc import API_KEY, BASE_CONFIG, ServerProcess, free_port, merge

PASSWORD = "admin-test-password-77f0"
ADMIN_SECRET = "admin-test-secret-2b9c41d8e6"
ADMIN: dict[str, Any] = {"admin": {"enabled": True, "password": PASSWORD, "secret": ADMIN_SECRET}}
#: Namespaces with history and presence for the live tail and channel views.
NAMESPACES = {
    "channel": {
        "namespaces": [
            *BASE_CONFIG["channel"]["namespaces"],
            {"name": "feed", "history_size": 10, "history_ttl": "60s", "presence": True},
        ]
    }
}


class Admin:
    """A started server with its client port and its internal (API + admin) port."""

    def __init__(self, server: ServerProcess, internal_port: int) -> None:
        self.server = server
        self.host = server.host
        self.port = server.port
        self.internal_port = internal_port

    def request(
        self,
        path: str,
        body: bytes | str | None = b"{}",
        headers: dict[str, str] | None = None,
        method: str = "POST",
        *,
        internal: bool = True,
        source: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers lower-cased, body) of one HTTP request (from `source`, another
        loopback address, if given)."""
        port = self.internal_port if internal else self.port
        conn = http.client.HTTPConnection(
            self.host, port, timeout=10, source_address=(source, 0) if source else None
        )
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def login(self, password: str = PASSWORD) -> str:
        """A token from /admin/auth."""
        status, _, body = self.request(
            "/admin/auth",
            f"password={password}",
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert status == 200, body
        token: str = json.loads(body)["token"]
        return token

    def api(self, token: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Call one method through /admin/api/<method>; the parsed answer."""
        status, _, body = self.request(
            f"/admin/api/{method}", json.dumps(params), {"Authorization": f"token {token}"}
        )
        assert status == 200, (status, body)
        answer: dict[str, Any] = json.loads(body)
        return answer

    def tail(self, headers: dict[str, str] | None = None) -> ClientConnection:
        """A WebSocket to the live tail."""
        return connect(
            f"ws://{self.host}:{self.internal_port}/admin/tail",
            additional_headers=headers,
            open_timeout=5,
        )


@pytest.fixture
def start_admin(make_server: Callable[..., ServerProcess]) -> Callable[..., Admin]:
    """Start a server with admin enabled on an internal port (plus `extra` config)."""

    def start(extra: dict[str, Any] | None = None, *, internal: bool = True) -> Admin:
        internal_port = free_port()
        config = merge(merge(ADMIN, NAMESPACES), extra or {})
        if internal:
            config = merge(config, {"http_server": {"internal_port": internal_port}})
        server = make_server(config)
        return Admin(server, internal_port if internal else server.port)

    return start


@pytest.fixture(scope="module")
def admin() -> Iterator[Admin]:
    """One admin-enabled server shared by the read-only tests of this module."""
    internal_port = free_port()
    config = merge(
        merge(merge(BASE_CONFIG, ADMIN), NAMESPACES),
        {"http_server": {"internal_port": internal_port}},
    )
    server = ServerProcess(config).start()
    try:
        yield Admin(server, internal_port)
    finally:
        server.close()


# ---- where things are served ----


def test_admin_and_api_only_on_the_internal_port(admin: Admin) -> None:
    api_headers = {"X-API-Key": API_KEY}
    # The client port serves clients only.
    assert admin.request("/", None, method="GET", internal=False)[0] == 404
    assert admin.request("/admin/init", internal=False)[0] == 404
    assert admin.request("/admin/auth", f"password={PASSWORD}", internal=False)[0] == 404
    assert admin.request("/api/info", headers=api_headers, internal=False)[0] == 404
    assert admin.request("/connection/websocket", None, method="GET", internal=False)[0] == 400
    # The internal port serves the API and the admin, not clients.
    assert admin.request("/api/info", headers=api_headers)[0] == 200
    status, headers, body = admin.request("/", None, method="GET")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"admin/static/app.js" in body
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert admin.request("/connection/websocket", None, method="GET")[0] == 404


def test_static_assets_come_from_the_package(admin: Admin) -> None:
    for name, ctype in [
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ]:
        status, headers, body = admin.request(f"/admin/static/{name}", None, method="GET")
        assert status == 200 and headers["content-type"].startswith(ctype) and body
    # Nothing outside the shipped files, however the path is spelled.
    for path in ("/admin/static/../http.py", "/admin/static/%2e%2e/auth.py", "/admin/static/"):
        assert admin.request(path, None, method="GET")[0] == 404
    # The pages load nothing from other hosts (they work offline).
    _, _, page = admin.request("/", None, method="GET")
    _, _, script = admin.request("/admin/static/app.js", None, method="GET")
    for text in (page, script):
        assert b"http://" not in text and b"https://" not in text and b"//cdn" not in text


def test_admin_is_off_by_default(make_server: Callable[..., ServerProcess]) -> None:
    server = make_server()
    admin = Admin(server, server.port)
    assert admin.request("/", None, method="GET")[0] == 404
    assert admin.request("/admin/auth", f"password={PASSWORD}")[0] == 404
    assert admin.request("/admin/api/info")[0] == 404
    # Without internal_port everything shares the client port, as before.
    assert admin.request("/api/info", headers={"X-API-Key": API_KEY})[0] == 200


def test_external_flags_move_admin_and_api_to_the_client_port(
    start_admin: Callable[..., Admin],
) -> None:
    admin = start_admin({"admin": {"external": True}, "http_api": {"external": True}})
    token = Admin(admin.server, admin.port).login()
    assert admin.request("/api/info", headers={"X-API-Key": API_KEY}, internal=False)[0] == 200
    status, _, _ = admin.request(
        "/admin/api/info", headers={"Authorization": f"token {token}"}, internal=False
    )
    assert status == 200
    assert admin.request("/api/info", headers={"X-API-Key": API_KEY})[0] == 404
    assert admin.request("/", None, method="GET")[0] == 404


def test_handler_prefix(start_admin: Callable[..., Admin]) -> None:
    admin = start_admin({"admin": {"handler_prefix": "/ops"}})
    assert admin.request("/", None, method="GET")[0] == 404
    status, headers, _ = admin.request("/ops", None, method="GET")
    assert status == 301 and headers["location"] == "/ops/"
    assert admin.request("/ops/", None, method="GET")[0] == 200
    assert admin.request("/ops/admin/static/app.js", None, method="GET")[0] == 200
    status, _, body = admin.request(
        "/ops/admin/auth",
        f"password={PASSWORD}",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 200
    token = json.loads(body)["token"]
    headers = {"Authorization": f"token {token}"}
    assert admin.request("/ops/admin/api/info", headers=headers)[0] == 200
    assert admin.request("/admin/api/info", headers=headers)[0] == 404


# ---- login ----


def test_login_answers(admin: Admin) -> None:
    status, _, body = admin.request("/admin/init", None, method="GET")
    assert status == 200
    assert json.loads(body) == {
        "insecure": False,
        "edition": "oss",
        "authenticated": False,
        "server": "centrifugo-fast",
    }
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert admin.request("/admin/auth", None, method="GET")[0] == 405
    status, _, body = admin.request("/admin/auth", f"password={PASSWORD}", form)
    assert status == 200
    answer = json.loads(body)
    assert set(answer) == {"token", "expires"} and answer["expires"] > time.time() + 3000
    # JSON and multipart bodies work too (some clients post a FormData).
    assert admin.request("/admin/auth", json.dumps({"password": PASSWORD}),
                         {"Content-Type": "application/json"})[0] == 200  # fmt: skip
    boundary = "xYz123"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="password"\r\n\r\n'
        f"{PASSWORD}\r\n--{boundary}--\r\n"
    )
    status, _, _ = admin.request(
        "/admin/auth", multipart, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert status == 200
    status, _, body = admin.request(
        "/admin/init", None, {"Authorization": f"token {answer['token']}"}, method="GET"
    )
    assert json.loads(body)["authenticated"] is True


def test_wrong_password_is_refused_slowly_then_locked_out(
    start_admin: Callable[..., Admin],
) -> None:
    admin = start_admin()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for attempt in range(5):
        started = time.monotonic()
        status, _, body = admin.request("/admin/auth", f"password=guess{attempt}", form)
        assert (status, body) == (400, b"wrong password\n")
        assert time.monotonic() - started >= 0.45  # each failure is answered late
    # Five failures lock the client out: even the right password is refused, at once.
    started = time.monotonic()
    status, headers, body = admin.request("/admin/auth", f"password={PASSWORD}", form)
    assert status == 429 and time.monotonic() - started < 0.4
    assert 1 <= int(headers["retry-after"]) <= 60
    assert json.loads(body)["error"] == "too many failed attempts"
    assert admin.request("/admin/api/info")[0] == 401
    log = admin.server.output()
    assert log.count("admin login failed") == 5
    assert "guess" not in log and PASSWORD not in log  # passwords are never logged


def test_lockout_is_per_client_address(start_admin: Callable[..., Admin]) -> None:
    admin = start_admin()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for attempt in range(5):
        status, _, _ = admin.request(
            "/admin/auth", f"password=guess{attempt}", form, source="127.0.0.2"
        )
        assert status == 400
    assert admin.request("/admin/auth", f"password={PASSWORD}", form, source="127.0.0.2")[0] == 429
    # Guesses from one address do not lock the operator at another one out.
    assert admin.request("/admin/auth", f"password={PASSWORD}", form)[0] == 200
    assert admin.request("/admin/auth", f"password={PASSWORD}", form, source="127.0.0.3")[0] == 200
    log = admin.server.output()
    assert log.count("admin login failed (client 127.0.0.2)") == 5


def test_no_password_configured_means_nobody_logs_in(start_admin: Callable[..., Admin]) -> None:
    admin = start_admin({"admin": {"password": ""}})
    status, _, body = admin.request("/admin/auth", "password=", {})
    assert status == 400 and b"not configured" in body
    assert admin.request("/admin/api/info")[0] == 401
    assert "nobody can log in" in admin.server.output()


def test_insecure_mode_needs_no_token(start_admin: Callable[..., Admin]) -> None:
    admin = start_admin({"admin": {"insecure": True, "password": "", "secret": ""}})
    status, _, body = admin.request("/admin/init", None, method="GET")
    assert json.loads(body)["insecure"] is True and json.loads(body)["authenticated"] is True
    assert admin.request("/admin/api/info")[0] == 200
    status, _, body = admin.request("/admin/api", b'{"method":"info","params":{}}')
    assert status == 200 and b'"nodes"' in body
    with admin.tail() as ws:
        ws.send(json.dumps({"channel": "feed:x"}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "subscribed", "channel": "feed:x"}


# ---- the token check ----


def _refused_credentials(admin: Admin) -> list[tuple[str, dict[str, str], str]]:
    """(what, headers, query) combinations that must never pass the admin API."""
    valid = admin.login()
    other_secret, _ = AdminTokens("some-other-secret").mint()
    expired, _ = AdminTokens(ADMIN_SECRET, clock=lambda: time.time() - 7200).mint()
    logged_out = admin.login()
    status, _, _ = admin.request("/admin/logout", None, {"Authorization": f"token {logged_out}"})
    assert status == 200
    tampered = valid[:-2] + ("AA" if not valid.endswith("AA") else "BB")
    forged_exp = valid.split(".")
    forged_exp[1] = str(int(forged_exp[1]) + 86400)
    return [
        ("no credentials", {}, ""),
        ("empty token", {"Authorization": "token "}, ""),
        ("garbage", {"Authorization": "token abc.def"}, ""),
        ("wrong scheme", {"Authorization": f"Bearer {valid}"}, ""),
        ("bare token", {"Authorization": valid}, ""),
        ("other secret", {"Authorization": f"token {other_secret}"}, ""),
        ("expired", {"Authorization": f"token {expired}"}, ""),
        ("logged out", {"Authorization": f"token {logged_out}"}, ""),
        ("tampered mac", {"Authorization": f"token {tampered}"}, ""),
        ("extended expiry", {"Authorization": "token " + ".".join(forged_exp)}, ""),
        ("API key header", {"X-API-Key": API_KEY}, ""),
        ("API key scheme", {"Authorization": f"apikey {API_KEY}"}, ""),
        ("API key query", {}, f"?api_key={API_KEY}"),
        ("token in query", {}, f"?token={valid}"),
        ("admin password", {"Authorization": f"token {PASSWORD}"}, ""),
        ("admin secret", {"Authorization": f"token {ADMIN_SECRET}"}, ""),
    ]


def test_every_admin_api_call_without_a_valid_token_is_refused(admin: Admin) -> None:
    bodies: dict[str, bytes] = {
        "publish": b'{"channel":"feed:a","data":{"x":1}}',
        "broadcast": b'{"channels":["feed:a"],"data":{"x":1}}',
        "batch": b'{"commands":[{"info":{}}]}',
    }
    paths = [(f"/admin/api/{m}", bodies.get(m, b"{}")) for m in (*LEGACY_METHODS, "batch")]
    paths += [
        ("/admin/api", json.dumps({"method": m, "params": {}}).encode()) for m in LEGACY_METHODS
    ]
    paths.append(("/admin/api/no_such_method", b"{}"))
    for what, headers, query in _refused_credentials(admin):
        for path, body in paths:
            for method in ("POST", "GET"):
                status, _, answer = admin.request(path + query, body, headers, method)
                assert (status, answer) == (401, b""), (what, path, method, status, answer)
        for path, method in [
            ("/admin/config", "GET"),
            ("/admin/logout", "POST"),
            ("/admin/auth/refresh", "POST"),
        ]:
            status, _, answer = admin.request(path + query, None, headers, method)
            assert (status, answer) == (401, b""), (what, path, status)
    # Nothing was published by any of those calls.
    token = admin.login()
    history = admin.api(token, "history", {"channel": "feed:a", "limit": -1})
    assert history["result"]["publications"] == []


def test_a_valid_token_reaches_every_method(admin: Admin) -> None:
    token = admin.login()
    auth = {"Authorization": f"Token {token}"}  # the scheme is case-insensitive
    published = admin.api(token, "publish", {"channel": "feed:b", "data": {"n": 1}})
    assert published["result"]["offset"] == 1
    assert admin.api(token, "info", {})["result"]["nodes"][0]["num_clients"] == 0
    assert admin.api(token, "channels", {})["result"] == {"channels": {}}
    assert admin.api(token, "presence_stats", {"channel": "feed:b"})["result"] == {
        "num_clients": 0,
        "num_users": 0,
    }
    assert admin.api(token, "publish", {"channel": "nope:b", "data": {}})["error"]["code"] == 102
    status, _, body = admin.request("/admin/api/batch", b'{"commands":[{"info":{}}]}', auth)
    assert status == 200 and json.loads(body)["replies"][0]["info"]["nodes"]
    # The legacy format Centrifugo's own admin page speaks: newline-delimited commands.
    legacy = (
        b'{"id":1,"method":"history","params":{"channel":"feed:b","limit":-1}}\n{"method":"info"}'
    )
    status, _, body = admin.request("/admin/api", legacy, auth)
    first, second = (json.loads(line) for line in body.split(b"\n"))
    assert status == 200 and first["id"] == 1
    assert first["result"]["publications"] == [{"data": {"n": 1}, "offset": 1}]
    assert second["result"]["nodes"]
    assert admin.request("/admin/api/info", None, auth, "GET")[0] == 405


def test_refresh_and_logout(admin: Admin) -> None:
    token = admin.login()
    status, _, body = admin.request(
        "/admin/auth/refresh", None, {"Authorization": f"token {token}"}
    )
    assert status == 200
    fresh = json.loads(body)["token"]
    assert fresh != token
    # The renewed token works, the old one is retired.
    assert admin.request("/admin/api/info", headers={"Authorization": f"token {fresh}"})[0] == 200
    assert admin.request("/admin/api/info", headers={"Authorization": f"token {token}"})[0] == 401
    assert admin.request("/admin/logout", None, {"Authorization": f"token {fresh}"})[0] == 200
    assert admin.request("/admin/api/info", headers={"Authorization": f"token {fresh}"})[0] == 401


def test_tokens_survive_a_restart_with_the_same_secret(start_admin: Callable[..., Admin]) -> None:
    first = start_admin()
    token = first.login()
    first.server.close()
    second = start_admin()
    headers = {"Authorization": f"token {token}"}
    assert second.request("/admin/api/info", headers=headers)[0] == 200
    third = start_admin({"admin": {"secret": "a-different-admin-secret-value"}})
    assert third.request("/admin/api/info", headers=headers)[0] == 401


# ---- config view ----


SECRETS = {
    "http_api.key": "api-key-SECRET-1",
    "client.token.hmac_secret_key": "hmac-SECRET-2-0123456789abcdef0123456789",
    "client.token.hmac_previous_secret_key": "hmac-previous-SECRET-3-0123456789abcdef",
    "client.subscription_token.hmac_secret_key": "sub-hmac-SECRET-4-0123456789abcdef0123",
    "admin.password": "admin-password-SECRET-5",
    "admin.secret": "admin-secret-SECRET-6",
    "engine.redis.password": "redis-password-SECRET-7",
    "engine.redis.sentinel_password": "sentinel-password-SECRET-8",
    "http_server.tls.key_pem": "-----BEGIN PRIVATE KEY-----SECRET-9",
}


def _nested(flat: dict[str, str]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def test_config_view_never_shows_secrets(start_admin: Callable[..., Admin]) -> None:
    redis_url = "redis://cache-user:redis-url-SECRET-10@127.0.0.1:6379/0"
    extra = merge(
        _nested(SECRETS),
        {"engine": {"redis": {"address": [redis_url, "127.0.0.1:6380"]}}, "node": {"name": "n1"}},
    )
    admin = start_admin(extra)
    token = admin.login(SECRETS["admin.password"])
    status, headers, body = admin.request(
        "/admin/config", None, {"Authorization": f"token {token}"}, method="GET"
    )
    assert status == 200 and headers["cache-control"] == "no-store"
    text = body.decode()
    for secret in [*SECRETS.values(), "redis-url-SECRET-10", "SECRET"]:
        assert secret not in text
    view = json.loads(body)
    for path in SECRETS:
        node = view
        for part in path.split("."):
            node = node[part]
        assert node == "********", path
    assert view["engine"]["redis"]["address"] == [
        "redis://********@127.0.0.1:6379/0",
        "127.0.0.1:6380",
    ]
    # Everything else is shown as configured, durations as Go strings.
    assert view["node"]["name"] == "n1"
    assert view["client"]["ping_interval"] == "25s"
    assert view["client"]["token"]["hmac_secret_key"] == "********"
    assert view["client"]["token"]["rsa_public_key"] == ""  # unset stays visibly unset
    assert view["http_server"]["internal_port"] == admin.internal_port
    # No other endpoint echoes a secret either.
    for path in ("/", "/admin/static/app.js", "/admin/init"):
        _, _, page = admin.request(path, None, method="GET")
        assert b"SECRET" not in page


# ---- live tail ----


def _recv(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=5))
    return message


def _close_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=5)
    return info.value.rcvd.code if info.value.rcvd is not None else None


def test_live_tail_streams_publications(admin: Admin) -> None:
    token = admin.login()
    with admin.tail() as ws:
        ws.send(json.dumps({"token": token, "channel": "feed:live"}))
        assert _recv(ws) == {"type": "subscribed", "channel": "feed:live"}
        admin.api(token, "publish", {"channel": "feed:live", "data": {"a": 1}, "tags": {"k": "v"}})
        pub = _recv(ws)
        assert pub["type"] == "publication" and pub["channel"] == "feed:live"
        assert pub["data"] == {"a": 1} and pub["tags"] == {"k": "v"} and pub["offset"] == 1
        assert abs(pub["time"] / 1000 - time.time()) < 60
        # Binary payloads come base64-encoded; other channels are not mixed in.
        admin.api(token, "publish", {"channel": "feed:other", "data": {"no": 1}})
        raw = b"\x00\xffbinary"
        b64 = base64.b64encode(raw).decode()
        admin.api(token, "publish", {"channel": "feed:live", "b64data": b64})
        pub = _recv(ws)
        assert pub["b64data"] == b64 and "data" not in pub
        # The tail is an observer: not a subscriber, not in presence or the node's counts.
        info = admin.api(token, "info", {})["result"]["nodes"][0]
        assert info["num_subs"] == 0 and info["num_channels"] == 0
        assert admin.api(token, "channels", {})["result"]["channels"] == {}
        assert admin.api(token, "presence", {"channel": "feed:live"})["result"]["presence"] == {}
        # Switching channels.
        ws.send(json.dumps({"channel": "chat:elsewhere"}))
        assert _recv(ws) == {"type": "subscribed", "channel": "chat:elsewhere"}
        admin.api(token, "publish", {"channel": "feed:live", "data": {"gone": 1}})
        admin.api(token, "publish", {"channel": "chat:elsewhere", "data": {"here": 1}})
        assert _recv(ws)["data"] == {"here": 1}
        # A channel of an unknown namespace is reported, the tail stays open.
        ws.send(json.dumps({"channel": "nope:x"}))
        assert _recv(ws) == {
            "type": "error",
            "message": "unknown channel (102)",
            "channel": "nope:x",
        }


def test_live_tail_needs_a_valid_token(admin: Admin) -> None:
    for hello in [{"channel": "feed:x"}, {"token": "cfa1.1.2.3", "channel": "feed:x"}]:
        with admin.tail() as ws:
            ws.send(json.dumps(hello))
            assert _recv(ws) == {"type": "error", "message": "unauthorized"}
            assert _close_code(ws) == 4001
    with admin.tail() as ws:
        ws.send(b"not json")
        assert _recv(ws)["type"] == "error"
        assert _close_code(ws) == 4003
    # A page on another site cannot open it in an operator's browser.
    token = admin.login()
    with admin.tail({"Origin": "https://evil.example"}) as ws:
        assert _close_code(ws) == 4001
    origin = f"http://{admin.host}:{admin.internal_port}"
    with admin.tail({"Origin": origin}) as ws:
        ws.send(json.dumps({"token": token, "channel": "feed:x"}))
        assert _recv(ws)["type"] == "subscribed"


def test_logout_closes_the_live_tails_of_that_token(admin: Admin) -> None:
    token = admin.login()
    other = admin.login()
    with admin.tail() as ws, admin.tail() as ws_other:
        ws.send(json.dumps({"token": token, "channel": "feed:y"}))
        ws_other.send(json.dumps({"token": other, "channel": "feed:y"}))
        assert _recv(ws)["type"] == _recv(ws_other)["type"] == "subscribed"
        assert admin.request("/admin/logout", None, {"Authorization": f"token {token}"})[0] == 200
        assert _close_code(ws) == 4002
        admin.api(other, "publish", {"channel": "feed:y", "data": {"still": "here"}})
        assert _recv(ws_other)["data"] == {"still": "here"}
