"""Authentication with public keys and JWKS, and connection limits, against a server process."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from centrifugo_fast.auth.jwt import make_token
from tests.serverproc import API_KEY, SECRET
from tests.wsclient import RawWebSocket

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PEM = (
    RSA_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def test_rsa_tokens_end_to_end(make_server: Any) -> None:
    srv = make_server({"client": {"token": {"hmac_secret_key": "", "rsa_public_key": RSA_PEM}}})
    ws = RawWebSocket(srv.host, srv.port).open()
    token = pyjwt.encode({"sub": "r1", "exp": int(time.time()) + 60}, RSA_KEY, algorithm="RS256")
    assert ws.connect(token)["connect"]["expires"] is True
    # An HS256 token is refused outright when only a public key is configured.
    bad = RawWebSocket(srv.host, srv.port).open()
    bad.send_json({"id": 1, "connect": {"token": make_token(SECRET, "r1", 60)}})
    assert bad.close_code() == 3500


def test_bad_public_key_is_a_config_error(make_server: Any) -> None:
    with pytest.raises(RuntimeError, match="rsa_public_key"):
        make_server({"client": {"token": {"rsa_public_key": "not a pem"}}})


def test_user_connection_limit(make_server: Any) -> None:
    srv = make_server({"client": {"user_connection_limit": 2}})
    clients = [RawWebSocket(srv.host, srv.port).open() for _ in range(3)]
    for ws in clients[:2]:
        assert "connect" in ws.connect(make_token(SECRET, "same", 60))
    clients[2].send_json({"id": 1, "connect": {"token": make_token(SECRET, "same", 60)}})
    assert clients[2].close_code() == 3504
    other = RawWebSocket(srv.host, srv.port).open()
    assert "connect" in other.connect(make_token(SECRET, "someone-else", 60))


def test_connection_limit(make_server: Any) -> None:
    srv = make_server({"client": {"connection_limit": 2}})
    upgraded_early = RawWebSocket(srv.host, srv.port).open()  # upgraded, not connected yet
    for user in ("a", "b"):
        assert "connect" in RawWebSocket(srv.host, srv.port).open().connect(
            make_token(SECRET, user, 60)
        )
    # A full node refuses new upgrades with 503, as Centrifugo's ConnLimit middleware...
    assert RawWebSocket(srv.host, srv.port).handshake()[0] == 503
    # ...and a connection upgraded before the node filled up is refused at connect.
    upgraded_early.send_json({"id": 1, "connect": {"token": make_token(SECRET, "c", 60)}})
    assert upgraded_early.close_code() == 3504


def test_user_id_http_header(make_server: Any) -> None:
    srv = make_server({"client": {"user_id_http_header": "X-User-Id"}})
    ws = RawWebSocket(srv.host, srv.port).open(**{"X-User-Id": "proxied-7"})
    assert "connect" in ws.connect()
    # The connection belongs to the header's user: disconnecting that user closes it.
    import urllib.request

    req = urllib.request.Request(
        srv.api_url + "/disconnect",
        data=json.dumps({"user": "proxied-7"}).encode(),
        headers={"X-API-Key": API_KEY},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert json.load(resp) == {"result": {}}
    assert ws.close_code() == 3503
    # Without the header (and no token) the connection has no credentials.
    bare = RawWebSocket(srv.host, srv.port).open()
    bare.send_json({"id": 1, "connect": {}})
    assert bare.close_code() == 3501


def test_connection_rate_limit_answers_503_before_upgrade(make_server: Any) -> None:
    srv = make_server({"client": {"connection_rate_limit": 3}})
    statuses = []
    for _ in range(8):
        ws = RawWebSocket(srv.host, srv.port)
        statuses.append(ws.handshake()[0])
    assert statuses[:3] == [101, 101, 101]
    assert 503 in statuses[3:]
    time.sleep(1.1)  # the bucket refills at 3 per second
    assert RawWebSocket(srv.host, srv.port).handshake()[0] == 101


class FlakyJwks:
    """A JWKS endpoint that can be switched off."""

    def __init__(self) -> None:
        self.up = False
        jwk = json.loads(pyjwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
        jwk.update({"kid": "main", "alg": "RS256"})
        body = json.dumps({"keys": [jwk]}).encode()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, payload = (200, body) if outer.up else (500, b"down")
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwks"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def flaky_jwks() -> Iterator[FlakyJwks]:
    server = FlakyJwks()
    yield server
    server.close()


def test_jwks_outage_is_a_temporary_error_and_recovers(
    make_server: Any, flaky_jwks: FlakyJwks
) -> None:
    srv = make_server(
        {"client": {"token": {"hmac_secret_key": "", "jwks_public_endpoint": flaky_jwks.url}}}
    )
    token = pyjwt.encode({"sub": "j"}, RSA_KEY, algorithm="RS256", headers={"kid": "main"})
    ws = RawWebSocket(srv.host, srv.port).open()
    reply = ws.connect(token)
    assert reply["error"] == {"code": 100, "message": "internal server error", "temporary": True}
    assert srv.alive()
    flaky_jwks.up = True
    time.sleep(1.1)  # refetches are rate limited to one a second
    again = RawWebSocket(srv.host, srv.port).open()
    assert again.connect(token)["connect"]["client"]


def test_oversized_token_closes_3500(make_server: Any) -> None:
    srv = make_server({})
    ws = RawWebSocket(srv.host, srv.port).open()
    huge = make_token(SECRET, "u", 60, extra={"pad": "x" * 20000})
    ws.send_json({"id": 1, "connect": {"token": huge}})
    assert ws.close_code() == 3500
    # Nothing else was affected.
    with socket.create_connection((srv.host, srv.port), timeout=2):
        pass
