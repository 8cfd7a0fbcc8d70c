"""JWT verification with pinned algorithms."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import jwt as pyjwt
import pytest

from centrifugo_fast.auth.jwt import (
    ConnectionToken,
    InvalidTokenError,
    SubscriptionToken,
    TokenExpiredError,
    TokenVerifier,
    make_token,
)
from centrifugo_fast.config.schema import TokenConfig

SECRET = "unit-test-secret-" + "0123456789abcdef" * 4
VERIFIER = TokenVerifier(TokenConfig(hmac_secret_key=SECRET))


def _sign(claims: dict[str, object], alg: str = "HS256", key: str = SECRET) -> str:
    return pyjwt.encode(claims, key, algorithm=alg)


def _connect(verifier: TokenVerifier, token: str) -> ConnectionToken:
    return asyncio.run(verifier.verify_connection_token(token))


def _subscribe(verifier: TokenVerifier, token: str) -> SubscriptionToken:
    return asyncio.run(verifier.verify_subscription_token(token))


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_families(alg: str) -> None:
    token = _connect(VERIFIER, _sign({"sub": "42", "info": {"a": 1}}, alg))
    assert token.user == "42" and token.info == b'{"a":1}' and token.expire_at == 0


def test_expiry_and_expire_at() -> None:
    exp = int(time.time()) + 100
    assert _connect(VERIFIER, _sign({"sub": "1", "exp": exp})).expire_at == exp
    token = _sign({"sub": "1", "exp": exp, "expire_at": exp + 50})
    assert _connect(VERIFIER, token).expire_at == exp + 50
    with pytest.raises(TokenExpiredError):
        _connect(VERIFIER, _sign({"sub": "1", "exp": int(time.time()) - 1}))


def test_b64info_wins_over_info() -> None:
    token = _sign({"sub": "1", "info": {"x": 1}, "b64info": base64.b64encode(b"\x00raw").decode()})
    assert _connect(VERIFIER, token).info == b"\x00raw"


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": 5},
        {"sub": "1", "channel": "x"},
        {"sub": "1", "channels": "news"},
        {"sub": "1", "b64info": "%%%"},
    ],
)
def test_invalid_claims(claims: dict[str, object]) -> None:
    with pytest.raises(InvalidTokenError):
        _connect(VERIFIER, _sign(claims))


def test_not_yet_valid_token() -> None:
    # Computed here, not at collection time: the suite may reach this test minutes later.
    with pytest.raises(InvalidTokenError):
        _connect(VERIFIER, _sign({"sub": "1", "nbf": int(time.time()) + 60}))


def test_wrong_key_none_alg_and_garbage() -> None:
    with pytest.raises(InvalidTokenError):
        _connect(VERIFIER, _sign({"sub": "1"}, key="other-secret-" + "0123456789abcdef" * 4))

    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    with pytest.raises(InvalidTokenError):
        _connect(VERIFIER, b64({"alg": "none"}) + "." + b64({"sub": "1"}) + ".")
    with pytest.raises(InvalidTokenError):
        _connect(VERIFIER, "garbage")


def test_no_key_configured_refuses_everything() -> None:
    verifier = TokenVerifier(TokenConfig())
    assert not verifier.enabled
    with pytest.raises(InvalidTokenError):
        _connect(verifier, _sign({"sub": "1"}))


def test_subscription_token_claims() -> None:
    token = _subscribe(
        VERIFIER,
        _sign(
            {
                "sub": "1",
                "channel": "$c",
                "client": "abc",
                "info": {"role": "x"},
                "override": {"presence": {"value": True}, "bad": 1},
            }
        ),
    )
    assert (token.user, token.channel, token.client) == ("1", "$c", "abc")
    assert token.info == b'{"role":"x"}' and token.override == {"presence": True}
    with pytest.raises(InvalidTokenError):
        _subscribe(VERIFIER, _sign({"sub": "1"}))


def test_short_key_is_reported_once() -> None:
    assert TokenVerifier(TokenConfig(hmac_secret_key="short")).startup_warnings()
    assert VERIFIER.startup_warnings() == []


def test_make_token_round_trip() -> None:
    token = make_token(SECRET, "u", 60, extra={"channels": ["a"]})
    claims = _connect(VERIFIER, token)
    assert claims.user == "u" and claims.channels == ("a",) and claims.expire_at > time.time()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        "only.two",
        "a.b.c.d",
        _b64(b"[]") + "." + _b64(b'{"sub":"1"}') + ".sig",  # header not an object
        _b64(b'{"alg":"HS256"}') + "." + _b64(b"[1]") + ".sig",  # claims not an object
        _b64(b'{"alg":"HS256"}') + "." + _b64(b"{bad json") + ".sig",
        _b64(b'{"alg":"HS256"}') + ".é." + "sig",  # not ASCII
        _b64(b'{"typ":"JWT"}') + "." + _b64(b'{"sub":"1"}') + ".sig",  # no alg
    ],
)
def test_malformed_tokens_are_invalid(token: str) -> None:
    """Structure errors are InvalidTokenError (error 109 to the client), never a crash."""
    with pytest.raises(InvalidTokenError):
        _connect(VERIFIER, token)


def test_signature_must_match_every_byte() -> None:
    """A token re-signed by another key, or with a flipped signature byte, is refused."""
    good = _sign({"sub": "1"})
    head, payload, sig = good.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[-1] ^= 1
    with pytest.raises(InvalidTokenError):
        _connect(VERIFIER, f"{head}.{payload}.{_b64(bytes(raw))}")
    with pytest.raises(InvalidTokenError):
        _connect(VERIFIER, _sign({"sub": "1"}, key="another-secret-" + "x" * 32))
    # The payload of one valid token under the signature of another is refused too.
    other = _sign({"sub": "2"})
    with pytest.raises(InvalidTokenError):
        _connect(VERIFIER, f"{head}.{other.split('.')[1]}.{sig}")


@pytest.mark.parametrize("claims", [{"exp": "9999999999"}, {"nbf": "0"}, {"exp": True}])
def test_time_claims_must_be_numbers(claims: dict[str, object]) -> None:
    with pytest.raises(InvalidTokenError):
        _connect(VERIFIER, _sign({"sub": "1", **claims}))


def test_not_before() -> None:
    now = int(time.time())
    assert _connect(VERIFIER, _sign({"sub": "1", "nbf": now - 1})).user == "1"
    with pytest.raises(InvalidTokenError):
        _connect(VERIFIER, _sign({"sub": "1", "nbf": now + 60}))
