"""Connection JWT verification: our HS256 path against a plain PyJWT decode of the same token.

A connect storm spends most of its server time here (py-spy profile of the storm scenario:
PyJWT's three decodes per token were 52 % of the server's CPU).
"""

from __future__ import annotations

import time

import jwt

from benchmarks.conftest import Benchmark
from centrifugo_fast.auth.jwt import TokenVerifier
from centrifugo_fast.config.schema import TokenConfig

SECRET = "bench-secret-" + "0123456789abcdef" * 4
TOKEN = jwt.encode(
    {"sub": "user-42", "exp": int(time.time()) + 3600, "info": {"name": "Alice"}},
    SECRET,
    algorithm="HS256",
)


def test_verify_connection_token(benchmark: Benchmark) -> None:
    benchmark.group = "connection JWT HS256"
    verifier = TokenVerifier(TokenConfig(hmac_secret_key=SECRET))
    coro_result = verifier.verify_connection_token

    def verify() -> object:
        coro = coro_result(TOKEN)
        try:
            coro.send(None)
        except StopIteration as done:  # nothing awaits for a static key
            return done.value
        raise AssertionError("verification suspended")

    assert verify().user == "user-42"  # type: ignore[attr-defined]
    benchmark(verify)


def test_pyjwt_decode_baseline(benchmark: Benchmark) -> None:
    benchmark.group = "connection JWT HS256"
    benchmark(jwt.decode, TOKEN, SECRET, algorithms=["HS256"])
