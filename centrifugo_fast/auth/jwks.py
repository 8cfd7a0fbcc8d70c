"""JWKS: public keys fetched from an HTTP endpoint, cached, looked up by `kid`.

Fetching is blocking HTTP (urllib), so it runs in the default executor; the event loop
never waits on the network. Keys are cached for an hour; an unknown `kid` triggers a
refetch, at most once a second per endpoint, so random `kid`s cannot hammer the endpoint.
A fetch that fails (endpoint down, junk) raises KeySourceUnavailable: callers answer with a
temporary error and the next attempt tries again.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import jwt

CACHE_TTL = 3600.0
FETCH_TIMEOUT = 1.0
MIN_REFETCH_INTERVAL = 1.0
MAX_JWKS_BYTES = 1024 * 1024


class KeySourceUnavailable(Exception):
    """The key endpoint could not be read; the client should retry later."""


class UnknownKey(Exception):
    """The endpoint has no usable key with the token's `kid`."""


@dataclass(frozen=True)
class PublicKey:
    """One usable key of a JWKS document."""

    key: Any
    #: Algorithms a token signed with this key may use.
    algorithms: tuple[str, ...]


_FAMILIES = {
    "RSA": ("RS256", "RS384", "RS512"),
    "EC": ("ES256", "ES384", "ES512"),
    "OKP": ("EdDSA",),
}


@dataclass
class _Cached:
    keys: dict[str, PublicKey] = field(default_factory=dict)
    fetched_at: float = -1.0e9


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310
        data: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(data) > MAX_JWKS_BYTES:
        raise ValueError("JWKS document too large")
    return data


def _parse(data: bytes) -> dict[str, PublicKey]:
    document = json.loads(data)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document")
    keys: dict[str, PublicKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        family = _FAMILIES.get(str(entry.get("kty")), ())
        declared = entry.get("alg")
        # "alg" is optional in a JWK; without it the key's whole family is allowed.
        algorithms = (declared,) if declared in family else family if declared is None else ()
        if not algorithms:
            continue
        try:
            key = jwt.PyJWK(entry, algorithms[0])
        except (jwt.PyJWTError, ValueError, TypeError):
            continue  # one bad key does not spoil the others
        keys[str(entry.get("kid", ""))] = PublicKey(key.key, algorithms)
    return keys


class JwksClient:
    """Resolves `kid` to a public key for one endpoint template."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self._cache: dict[str, _Cached] = {}

    def url(self, variables: dict[str, str]) -> str:
        """The endpoint with `{{name}}` placeholders filled from token variables."""
        url = self.endpoint
        for name, value in variables.items():
            url = url.replace("{{" + name + "}}", value)
        if "{{" in url:
            raise UnknownKey("JWKS endpoint variables missing from the token")
        return url

    async def key(self, kid: str, variables: dict[str, str]) -> PublicKey:
        """The key with `kid`, fetching the document when needed."""
        url = self.url(variables)
        cached = self._cache.setdefault(url, _Cached())
        now = time.monotonic()
        stale = now - cached.fetched_at > CACHE_TTL
        if stale or (kid not in cached.keys and now - cached.fetched_at > MIN_REFETCH_INTERVAL):
            loop = asyncio.get_running_loop()
            try:
                data = await loop.run_in_executor(None, _fetch, url)
                keys = _parse(data)
            except (OSError, urllib.error.URLError, ValueError) as exc:
                raise KeySourceUnavailable(f"JWKS endpoint {url}: {exc}") from exc
            cached.keys = keys
            cached.fetched_at = now
        key = cached.keys.get(kid)
        if key is None:
            raise UnknownKey(f"no key with kid {kid!r}")
        return key
