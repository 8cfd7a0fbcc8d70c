"""RSA/ECDSA/JWKS verification, pinned algorithms, audience/issuer, rotation, user claim."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from centrifugo_fast.auth.jwt import (
    MAX_TOKEN_LENGTH,
    ConnectionToken,
    InvalidTokenError,
    TokenExpiredError,
    TokenVerifier,
    TokenVerifyUnavailable,
)
from centrifugo_fast.config.schema import TokenConfig

HMAC = "hmac-secret-" + "0123456789abcdef" * 4
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC384_KEY = ec.generate_private_key(ec.SECP384R1())


def _pem(key: Any) -> str:
    pem: str = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return pem


def _connect(verifier: TokenVerifier, token: str) -> ConnectionToken:
    return asyncio.run(verifier.verify_connection_token(token))


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
def test_rsa(alg: str) -> None:
    verifier = TokenVerifier(TokenConfig(rsa_public_key=_pem(RSA_KEY)))
    assert _connect(verifier, pyjwt.encode({"sub": "r"}, RSA_KEY, algorithm=alg)).user == "r"


@pytest.mark.parametrize(("alg", "key"), [("ES256", EC_KEY), ("ES384", EC384_KEY)])
def test_ecdsa(alg: str, key: Any) -> None:
    verifier = TokenVerifier(TokenConfig(ecdsa_public_key=_pem(key)))
    assert _connect(verifier, pyjwt.encode({"sub": "e"}, key, algorithm=alg)).user == "e"


def test_wrong_key_type_and_tampering() -> None:
    verifier = TokenVerifier(TokenConfig(rsa_public_key=_pem(RSA_KEY)))
    with pytest.raises(InvalidTokenError):  # ES token, only RSA configured
        _connect(verifier, pyjwt.encode({"sub": "x"}, EC_KEY, algorithm="ES256"))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidTokenError):  # signed by another RSA key
        _connect(verifier, pyjwt.encode({"sub": "x"}, other, algorithm="RS256"))
    token = pyjwt.encode({"sub": "x"}, RSA_KEY, algorithm="RS256")
    head, _, sig = token.split(".")
    with pytest.raises(InvalidTokenError):  # claims changed after signing
        _connect(verifier, f"{head}.{_b64({'sub': 'admin'})}.{sig}")


def test_algorithm_confusion_is_refused() -> None:
    """An HS256 token 'signed' with the RSA public key must not pass an RSA-only verifier."""
    public_pem = _pem(RSA_KEY)
    verifier = TokenVerifier(TokenConfig(rsa_public_key=public_pem))
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64({"sub": "admin"})
    import hashlib
    import hmac as hmac_mod

    mac = hmac_mod.new(public_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    sig = base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()
    with pytest.raises(InvalidTokenError, match="not enabled"):
        _connect(verifier, f"{header}.{payload}.{sig}")


def test_none_algorithm_is_refused_everywhere() -> None:
    token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64({"sub": "admin"}) + "."
    for config in (
        TokenConfig(hmac_secret_key=HMAC),
        TokenConfig(rsa_public_key=_pem(RSA_KEY)),
        TokenConfig(hmac_secret_key=HMAC, ecdsa_public_key=_pem(EC_KEY)),
    ):
        with pytest.raises(InvalidTokenError):
            _connect(TokenVerifier(config), token)


def test_audience_and_issuer() -> None:
    exact = TokenVerifier(TokenConfig(hmac_secret_key=HMAC, audience="app", issuer="auth"))
    ok = pyjwt.encode({"sub": "1", "aud": ["x", "app"], "iss": "auth"}, HMAC, algorithm="HS256")
    assert _connect(exact, ok).user == "1"
    for claims in ({"sub": "1", "aud": "other", "iss": "auth"}, {"sub": "1", "aud": "app"}):
        with pytest.raises(InvalidTokenError):
            _connect(exact, pyjwt.encode(claims, HMAC, algorithm="HS256"))
    regex = TokenVerifier(
        TokenConfig(hmac_secret_key=HMAC, audience_regex="^app-[a-z]+$", issuer_regex="^https://")
    )
    good = {"sub": "1", "aud": "app-eu", "iss": "https://auth"}
    assert _connect(regex, pyjwt.encode(good, HMAC, algorithm="HS256")).user == "1"
    with pytest.raises(InvalidTokenError):
        _connect(regex, pyjwt.encode({**good, "aud": "app-EU"}, HMAC, algorithm="HS256"))


def test_user_id_claim() -> None:
    verifier = TokenVerifier(TokenConfig(hmac_secret_key=HMAC, user_id_claim="uid"))
    token = pyjwt.encode({"sub": "ignored", "uid": "42"}, HMAC, algorithm="HS256")
    assert _connect(verifier, token).user == "42"


def test_previous_hmac_key_until_valid_until() -> None:
    old = "old-secret-" + "0123456789abcdef" * 4
    token = pyjwt.encode({"sub": "1"}, old, algorithm="HS256")
    rotating = TokenVerifier(
        TokenConfig(
            hmac_secret_key=HMAC,
            hmac_previous_secret_key=old,
            hmac_previous_secret_key_valid_until=int(time.time()) + 60,
        )
    )
    assert _connect(rotating, token).user == "1"
    expired = TokenVerifier(
        TokenConfig(
            hmac_secret_key=HMAC,
            hmac_previous_secret_key=old,
            hmac_previous_secret_key_valid_until=int(time.time()) - 1,
        )
    )
    with pytest.raises(InvalidTokenError):
        _connect(expired, token)


def test_time_claims() -> None:
    verifier = TokenVerifier(TokenConfig(hmac_secret_key=HMAC))
    now = int(time.time())
    with pytest.raises(TokenExpiredError):
        _connect(verifier, pyjwt.encode({"sub": "1", "exp": now - 1}, HMAC, algorithm="HS256"))
    with pytest.raises(InvalidTokenError):
        _connect(verifier, pyjwt.encode({"sub": "1", "nbf": now + 30}, HMAC, algorithm="HS256"))
    # iat a little in the future (clock skew between backend and server) is no surprise.
    future_iat = pyjwt.encode({"sub": "1", "iat": now + 5}, HMAC, algorithm="HS256")
    assert _connect(verifier, future_iat).user == "1"
    with pytest.raises(InvalidTokenError):
        _connect(verifier, pyjwt.encode({"sub": "1", "iat": "yesterday"}, HMAC, "HS256"))


def test_oversized_and_garbage_tokens() -> None:
    verifier = TokenVerifier(TokenConfig(hmac_secret_key=HMAC))
    huge = pyjwt.encode({"sub": "1", "pad": "x" * MAX_TOKEN_LENGTH}, HMAC, algorithm="HS256")
    with pytest.raises(InvalidTokenError, match="too long"):
        _connect(verifier, huge)
    for garbage in ("", "a.b", "a.b.c", "...", "eyJhbGciOiJIUzI1NiJ9.e30"):
        with pytest.raises(InvalidTokenError):
            _connect(verifier, garbage)


def test_skip_signature_still_checks_expiry() -> None:
    verifier = TokenVerifier(TokenConfig(), skip_signature=True)
    assert _connect(verifier, pyjwt.encode({"sub": "9"}, HMAC + "x", algorithm="HS256")).user
    with pytest.raises(TokenExpiredError):
        _connect(verifier, pyjwt.encode({"sub": "9", "exp": 1}, HMAC + "x", algorithm="HS256"))


# ---- JWKS ----


class JwksServer:
    """A JWKS endpoint on loopback whose document and health the test controls."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.body: bytes | None = None
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = (
                    outer.body
                    if outer.body is not None
                    else json.dumps({"keys": outer.keys}).encode()
                )
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def add(self, key: Any, kid: str, alg: str | None = None) -> None:
        jwk = json.loads(
            pyjwt.algorithms.get_default_algorithms()[alg or "RS256"].to_jwk(key.public_key())
        )
        jwk["kid"] = kid
        if alg is None:
            jwk.pop("alg", None)
        else:
            jwk["alg"] = alg
        self.keys.append(jwk)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


def _rs(kid: str, key: Any = RSA_KEY, alg: str = "RS256", **claims: Any) -> str:
    return pyjwt.encode({"sub": "j", **claims}, key, algorithm=alg, headers={"kid": kid})


def test_jwks_kid_lookup_cache_and_refetch(jwks: JwksServer) -> None:
    jwks.add(RSA_KEY, "k1", "RS256")
    verifier = TokenVerifier(TokenConfig(jwks_public_endpoint=jwks.url + "/keys"))

    async def scenario() -> None:
        assert (await verifier.verify_connection_token(_rs("k1"))).user == "j"
        assert (await verifier.verify_connection_token(_rs("k1"))).user == "j"
        assert jwks.hits == 1  # cached
        second = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwks.add(second, "k2")  # no alg: the RSA family is allowed
        await asyncio.sleep(1.1)  # refetches of unknown kids are rate limited to 1/s
        assert (await verifier.verify_connection_token(_rs("k2", second, "RS384"))).user == "j"
        assert jwks.hits == 2
        with pytest.raises(InvalidTokenError):  # an EC alg with an RSA key
            await verifier.verify_connection_token(_rs("k2", EC_KEY, "ES256"))
        with pytest.raises(InvalidTokenError):  # HS is never accepted with JWKS
            await verifier.verify_connection_token(
                pyjwt.encode({"sub": "j"}, HMAC, algorithm="HS256", headers={"kid": "k1"})
            )
        with pytest.raises(InvalidTokenError):
            await verifier.verify_connection_token(_rs("nope"))

    asyncio.run(scenario())


def test_jwks_down_is_temporary_and_recovers(jwks: JwksServer) -> None:
    jwks.add(EC_KEY, "e1", "ES256")
    jwks.status = 503
    jwks.body = b"down"
    verifier = TokenVerifier(TokenConfig(jwks_public_endpoint=jwks.url))
    token = _rs("e1", EC_KEY, "ES256")

    async def scenario() -> None:
        with pytest.raises(TokenVerifyUnavailable):
            await verifier.verify_connection_token(token)
        jwks.status, jwks.body = 200, b"{not json"
        await asyncio.sleep(1.1)
        with pytest.raises(TokenVerifyUnavailable):
            await verifier.verify_connection_token(token)
        jwks.body = None
        await asyncio.sleep(1.1)
        assert (await verifier.verify_connection_token(token)).user == "j"

    asyncio.run(scenario())


def test_jwks_url_from_issuer_regex(jwks: JwksServer) -> None:
    jwks.add(RSA_KEY, "t1", "RS256")
    verifier = TokenVerifier(
        TokenConfig(
            jwks_public_endpoint=jwks.url + "/{{tenant}}/keys",
            issuer_regex=r"^https://(?P<tenant>[a-z]+)\.auth$",
        )
    )
    token = _rs("t1", iss="https://acme.auth")
    assert _connect(verifier, token).user == "j"
    with pytest.raises(InvalidTokenError):
        _connect(verifier, _rs("t1", iss="https://ACME.auth"))
