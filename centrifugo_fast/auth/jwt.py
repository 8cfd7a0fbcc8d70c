"""Connection and subscription JWT verification (spec/server-api.md §5).

Algorithms are pinned by configuration: only the families whose keys are configured are
accepted, so `none` and algorithm-confusion tokens are refused by construction.
"""

from __future__ import annotations

import base64
import binascii
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import jwt
import msgspec
from jwt.warnings import InsecureKeyLengthWarning

from ..config.schema import TokenConfig

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


class TokenVerifier:
    """Verifies JWTs against one `client.token`-style key set."""

    def __init__(self, config: TokenConfig) -> None:
        self._hmac_key = config.hmac_secret_key
        self._algorithms: list[str] = list(HMAC_ALGORITHMS) if self._hmac_key else []

    @property
    def enabled(self) -> bool:
        """True when at least one verification key is configured."""
        return bool(self._algorithms)

    def startup_warnings(self) -> list[str]:
        """Problems worth logging once when the server starts."""
        if self._hmac_key and len(self._hmac_key.encode()) < _MIN_HMAC_KEY_BYTES:
            return ["client.token.hmac_secret_key is shorter than 32 bytes; use a longer key"]
        return []

    def _decode(self, token: str) -> dict[str, Any]:
        if not self._algorithms:
            raise InvalidTokenError("no token verification key is configured")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                claims: dict[str, Any] = jwt.decode(
                    token,
                    self._hmac_key,
                    algorithms=self._algorithms,
                    options={"verify_aud": False, "verify_iss": False},
                )
        except jwt.ExpiredSignatureError as exc:
            raise TokenExpiredError("token expired") from exc
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(str(exc)) from exc
        if not isinstance(claims, dict):
            raise InvalidTokenError("claims must be an object")
        sub = claims.get("sub", "")
        if not isinstance(sub, str):
            raise InvalidTokenError("sub claim must be a string")
        return claims

    def verify_connection_token(self, token: str) -> ConnectionToken:
        """Verify a connection JWT and return its claims."""
        claims = self._decode(token)
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

    def verify_subscription_token(self, token: str) -> SubscriptionToken:
        """Verify a subscription JWT and return its claims."""
        claims = self._decode(token)
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
