"""Connection and subscription JWT verification (spec/server-api.md §5).

Algorithms are pinned by configuration: only the families whose keys are configured are
accepted, so `none` and algorithm-confusion tokens are refused by construction.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import jwt
import msgspec
from jwt.algorithms import get_default_algorithms
from jwt.warnings import InsecureKeyLengthWarning

from ..config.schema import TokenConfig
from ..errors import ConfigError
from .jwks import JwksClient, KeySourceUnavailable, UnknownKey

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
_MIN_HMAC_KEY_BYTES = 32


class TokenError(Exception):
    """A token could not be accepted."""


class TokenExpiredError(TokenError):
    """The token's `exp` is in the past (the client should fetch a new one)."""


class InvalidTokenError(TokenError):
    """Bad signature, algorithm, format or claims."""


@dataclass(frozen=True, slots=True)
class ServerSubscription:
    """One server-side subscription requested by a token (`subs` or `channels` claim)."""

    info: bytes = b""
    data: bytes = b""
    override: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConnectionToken:
    """Verified claims of a connection JWT."""

    user: str
    #: Unix seconds when the connection expires; 0 = never.
    expire_at: int
    info: bytes = b""
    #: Server-side subscriptions: the `subs` claim, or else the `channels` claim.
    subs: dict[str, ServerSubscription] = field(default_factory=dict)
    meta: bytes = b""

    @property
    def channels(self) -> tuple[str, ...]:
        """The server-side channels, in claim order."""
        return tuple(self.subs)


@dataclass(frozen=True, slots=True)
class SubscriptionToken:
    """Verified claims of a subscription JWT."""

    user: str
    channel: str
    #: Unix seconds when the subscription expires; 0 = never.
    expire_at: int
    client: str = ""
    info: bytes = b""
    data: bytes = b""
    override: dict[str, bool] = field(default_factory=dict)


def _json_claim(claims: dict[str, Any], name: str) -> bytes:
    value = claims.get(name)
    return b"" if value is None else msgspec.json.encode(value)


def _b64_claim(claims: dict[str, Any], name: str) -> bytes | None:
    value = claims.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidTokenError(f"{name} claim must be a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidTokenError(f"{name} claim is not valid base64") from exc


def _int_claim(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTokenError(f"{name} claim must be a number")
    return int(value)


def _override(value: Any) -> dict[str, bool]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidTokenError("override claim must be an object")
    return {
        key: item["value"]
        for key, item in value.items()
        if isinstance(item, dict) and isinstance(item.get("value"), bool)
    }


def _server_subs(claims: dict[str, Any]) -> dict[str, ServerSubscription]:
    subs = claims.get("subs")
    if subs:
        if not isinstance(subs, dict):
            raise InvalidTokenError("subs claim must be an object")
        result = {}
        for channel, opts in subs.items():
            if not isinstance(opts, dict):
                raise InvalidTokenError("subs claim values must be objects")
            b64info = _b64_claim(opts, "b64info")
            b64data = _b64_claim(opts, "b64data")
            result[channel] = ServerSubscription(
                info=b64info if b64info is not None else _json_claim(opts, "info"),
                data=b64data if b64data is not None else _json_claim(opts, "data"),
                override=_override(opts.get("override")),
            )
        return result
    channels = claims.get("channels") or []
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise InvalidTokenError("channels claim must be a list of strings")
    return {channel: ServerSubscription() for channel in channels}


def _expiry(claims: dict[str, Any]) -> int:
    expire_at = _int_claim(claims, "expire_at")
    if expire_at is not None:
        return expire_at
    return _int_claim(claims, "exp") or 0


HS_ALGORITHMS = HMAC_ALGORITHMS
RS_ALGORITHMS = ("RS256", "RS384", "RS512")
ES_ALGORITHMS = ("ES256", "ES384", "ES512")
#: Longer tokens are refused before any parsing (a JWT with many `subs` is a few KiB).
MAX_TOKEN_LENGTH = 16384


class TokenVerifyUnavailable(TokenError):
    """Keys could not be obtained right now (JWKS down): a temporary failure."""


def load_public_key(pem: str, kind: type[Any], where: str) -> Any:
    """Parse a PEM public key of `kind` (RSAPublicKey/EllipticCurvePublicKey) or raise."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: not a PEM public key: {exc}") from exc
    if not isinstance(key, kind):
        raise ConfigError(f"{where}: expected a {kind.__name__}")
    return key


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A JWS compact token split and decoded, not yet verified."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


#: Decoded headers by their encoded segment: clients of one application share a handful of
#: headers, so this saves a base64 and JSON decode per connect. Bounded; values never mutated.
_header_cache: dict[str, dict[str, Any]] = {}
_HEADER_CACHE_SIZE = 256

#: Digest names for hmac.digest (its one-shot C path; hmac.new builds two Python objects).
_HMAC_HASHES = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}
#: PyJWT's algorithm objects verify RSA and ECDSA signatures (with keys loaded once).
_ASYMMETRIC = {
    name: algorithm
    for name, algorithm in get_default_algorithms().items()
    if name in RS_ALGORITHMS or name in ES_ALGORITHMS
}
_json_object = msgspec.json.Decoder(dict[str, Any])


def _b64url(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidTokenError("invalid base64 in token") from exc


def _decode_object(segment: str, what: str) -> dict[str, Any]:
    try:
        return _json_object.decode(_b64url(segment))
    except msgspec.DecodeError as exc:
        raise InvalidTokenError(f"invalid {what}: {exc}") from exc


def _parse(token: str) -> _Parsed:
    """Split and decode a compact JWS (RFC 7515 §7.1) without verifying it."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidTokenError("a token has three dot-separated segments")
    head, payload, signature = parts
    if not token.isascii():
        raise InvalidTokenError("invalid characters in token")
    header = _header_cache.get(head)
    if header is None:
        header = _decode_object(head, "header")
        if len(_header_cache) >= _HEADER_CACHE_SIZE:
            _header_cache.clear()
        _header_cache[head] = header
    return _Parsed(
        header=header,
        claims=_decode_object(payload, "claims"),
        signing_input=f"{head}.{payload}".encode("ascii"),
        signature=_b64url(signature),
    )


def _signature_ok(parsed: _Parsed, alg: str, key: Any) -> bool:
    """True when `key` signed the token with `alg` (already checked to be enabled)."""
    hash_function = _HMAC_HASHES.get(alg)
    if hash_function is not None:
        secret = key.encode() if isinstance(key, str) else key
        expected = hmac.digest(secret, parsed.signing_input, hash_function)
        return hmac.compare_digest(expected, parsed.signature)
    algorithm = _ASYMMETRIC.get(alg)
    if algorithm is None:
        return False
    try:
        return bool(algorithm.verify(parsed.signing_input, key, parsed.signature))
    except (ValueError, TypeError):
        return False


def _numeric_date(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTokenError(f"{name} claim must be a number")
    return value


def _check_times(claims: dict[str, Any]) -> None:
    """exp and nbf (RFC 7519 §4.1.4-5), without leeway, like Centrifugo."""
    now = time.time()
    exp = _numeric_date(claims, "exp")
    if exp is not None and exp <= now:
        raise TokenExpiredError("token expired")
    nbf = _numeric_date(claims, "nbf")
    if nbf is not None and nbf > now:
        raise InvalidTokenError("token is not yet valid (nbf)")


class TokenVerifier:
    """Verifies JWTs against one `client.token`-style key configuration.

    Algorithms are pinned by the configuration: HS* only with an HMAC key, RS* only with an
    RSA key, ES* only with an ECDSA key, and only JWKS keys when a JWKS endpoint is set. A
    token naming any other algorithm (`none` included) is invalid, whatever key it brings.
    """

    def __init__(
        self, config: TokenConfig, section: str = "client.token", *, skip_signature: bool = False
    ) -> None:
        from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
        from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

        self._config = config
        self._hmac_key = config.hmac_secret_key
        self._previous_hmac_key = config.hmac_previous_secret_key
        self._previous_valid_until = config.hmac_previous_secret_key_valid_until
        self._rsa_key = (
            load_public_key(config.rsa_public_key, RSAPublicKey, f"{section}.rsa_public_key")
            if config.rsa_public_key
            else None
        )
        self._ec_key = (
            load_public_key(
                config.ecdsa_public_key, EllipticCurvePublicKey, f"{section}.ecdsa_public_key"
            )
            if config.ecdsa_public_key
            else None
        )
        self._jwks = (
            JwksClient(config.jwks_public_endpoint) if config.jwks_public_endpoint else None
        )
        self._audience_re = re.compile(config.audience_regex) if config.audience_regex else None
        self._issuer_re = re.compile(config.issuer_regex) if config.issuer_regex else None
        self._user_claim = config.user_id_claim or "sub"
        #: client.insecure_skip_token_signature_verify: claims are trusted unsigned (dev only).
        self._skip_signature = skip_signature

    @property
    def enabled(self) -> bool:
        """True when at least one way to verify signatures is configured."""
        keys = self._hmac_key or self._rsa_key or self._ec_key or self._jwks
        return bool(keys) or self._skip_signature

    def startup_warnings(self) -> list[str]:
        """Problems worth logging once when the server starts."""
        if self._hmac_key and len(self._hmac_key.encode()) < _MIN_HMAC_KEY_BYTES:
            return ["client.token.hmac_secret_key is shorter than 32 bytes; use a longer key"]
        return []

    def _static_key(self, alg: str) -> Any:
        if alg in HS_ALGORITHMS and self._hmac_key:
            return self._hmac_key
        if alg in RS_ALGORITHMS and self._rsa_key is not None:
            return self._rsa_key
        if alg in ES_ALGORITHMS and self._ec_key is not None:
            return self._ec_key
        raise InvalidTokenError(f"algorithm {alg!r} is not enabled")

    def _token_variables(self, claims: dict[str, Any]) -> dict[str, str]:
        """Named groups of issuer_regex/audience_regex (they may fill the JWKS URL)."""
        variables: dict[str, str] = {}
        if self._issuer_re is not None:
            match = self._issuer_re.search(str(claims.get("iss", "")))
            if match is None:
                raise InvalidTokenError("issuer not matched")
            variables.update({k: v for k, v in match.groupdict().items() if v is not None})
        if self._audience_re is not None:
            audiences = claims.get("aud", [])
            audiences = [audiences] if isinstance(audiences, str) else audiences
            for aud in audiences if isinstance(audiences, list) else []:
                match = self._audience_re.search(str(aud))
                if match is not None:
                    variables.update({k: v for k, v in match.groupdict().items() if v is not None})
                    break
            else:
                raise InvalidTokenError("audience not matched")
        return variables

    def _check_claims(self, claims: dict[str, Any]) -> None:
        if self._config.audience:
            aud = claims.get("aud")
            audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
            if self._config.audience not in audiences:
                raise InvalidTokenError("invalid audience")
        if self._config.issuer and claims.get("iss") != self._config.issuer:
            raise InvalidTokenError("invalid issuer")
        iat = claims.get("iat")
        if iat is not None and (isinstance(iat, bool) or not isinstance(iat, int | float)):
            raise InvalidTokenError("iat claim must be a number")

    async def _decode(self, token: str) -> dict[str, Any]:
        if not self.enabled:
            raise InvalidTokenError("no token verification key is configured")
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidTokenError("token too long")
        parsed = _parse(token)
        alg = parsed.header.get("alg")
        if not isinstance(alg, str):
            raise InvalidTokenError("no algorithm in the token header")
        variables = self._token_variables(parsed.claims)
        if not self._skip_signature:
            await self._verify_with_keys(parsed, alg, variables)
        claims = parsed.claims
        _check_times(claims)
        self._check_claims(claims)
        sub = claims.get("sub", "")
        if not isinstance(sub, str):
            raise InvalidTokenError("sub claim must be a string")
        if self._user_claim != "sub":
            user = claims.get(self._user_claim, "")
            if not isinstance(user, str):
                raise InvalidTokenError(f"{self._user_claim} claim must be a string")
            claims["sub"] = user
        return claims

    async def _verify_with_keys(self, parsed: _Parsed, alg: str, variables: dict[str, str]) -> None:
        if self._jwks is not None:
            try:
                public = await self._jwks.key(str(parsed.header.get("kid", "")), variables)
            except KeySourceUnavailable as exc:
                raise TokenVerifyUnavailable(str(exc)) from exc
            except UnknownKey as exc:
                raise InvalidTokenError(str(exc)) from exc
            if alg not in public.algorithms:
                raise InvalidTokenError(f"algorithm {alg!r} does not match the key")
            keys = [public.key]
        else:
            keys = [self._static_key(alg)]
            if (
                alg in HS_ALGORITHMS
                and self._previous_hmac_key
                and (not self._previous_valid_until or time.time() <= self._previous_valid_until)
            ):
                keys.append(self._previous_hmac_key)
        if not any(_signature_ok(parsed, alg, key) for key in keys):
            raise InvalidTokenError("signature verification failed")

    async def verify_connection_token(self, token: str) -> ConnectionToken:
        """Verify a connection JWT and return its claims."""
        claims = await self._decode(token)
        if "channel" in claims:
            raise InvalidTokenError("a connection token must not contain a channel claim")
        b64info = _b64_claim(claims, "b64info")
        return ConnectionToken(
            user=claims.get("sub", ""),
            expire_at=_expiry(claims),
            info=b64info if b64info is not None else _json_claim(claims, "info"),
            subs=_server_subs(claims),
            meta=_json_claim(claims, "meta"),
        )

    async def verify_subscription_token(self, token: str) -> SubscriptionToken:
        """Verify a subscription JWT and return its claims."""
        claims = await self._decode(token)
        channel = claims.get("channel")
        if not isinstance(channel, str) or not channel:
            raise InvalidTokenError("subscription token needs a channel claim")
        client = claims.get("client", "")
        if not isinstance(client, str):
            raise InvalidTokenError("client claim must be a string")
        b64info = _b64_claim(claims, "b64info")
        b64data = _b64_claim(claims, "b64data")
        override = _override(claims.get("override"))
        return SubscriptionToken(
            user=claims.get("sub", ""),
            channel=channel,
            expire_at=_expiry(claims),
            client=client,
            info=b64info if b64info is not None else _json_claim(claims, "info"),
            data=b64data if b64data is not None else _json_claim(claims, "data"),
            override=override,
        )


def make_token(
    secret: str, user: str, ttl: int | None = None, extra: dict[str, Any] | None = None
) -> str:
    """Sign an HS256 connection JWT (used by `gentoken` and tests)."""
    claims: dict[str, Any] = {"sub": user}
    if ttl is not None and ttl >= 0:
        claims["exp"] = int(time.time()) + ttl
    claims.update(extra or {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm="HS256")
