"""Admin login: short-lived signed tokens and throttling of failed password attempts.

A token is `cfa1.<exp>.<nonce>.<mac>`: an expiry (Unix seconds), a random nonce and an
HMAC-SHA256 over both, keyed by a key derived from `admin.secret`. It is stateless, so it
stays valid across restarts with the same secret (as Centrifugo's does); logging out records
the nonce until the token would have expired anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

#: How long a token is valid; the UI renews it while the operator keeps the page open.
TOKEN_TTL = 3600
_PREFIX = "cfa1"
#: Longer strings are refused before any parsing or hashing.
_MAX_TOKEN_LENGTH = 200


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class AdminToken:
    """A verified token: its nonce (for logout) and expiry (Unix seconds)."""

    nonce: str
    exp: int


class AdminTokens:
    """Mints and verifies admin tokens for one secret."""

    def __init__(
        self, secret: str, ttl: int = TOKEN_TTL, clock: Callable[[], float] = time.time
    ) -> None:
        # A derived key, so a token MAC can never be replayed as any other use of the secret.
        self._key = hmac.new(
            secret.encode(), b"centrifugo-fast admin token v1", hashlib.sha256
        ).digest()
        self.enabled = bool(secret)
        self.ttl = ttl
        self._clock = clock
        #: Logged-out nonces -> their expiry; pruned as they expire.
        self._revoked: dict[str, int] = {}

    def _mac(self, exp: int, nonce: str) -> str:
        message = f"{_PREFIX}.{exp}.{nonce}".encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def mint(self) -> tuple[str, AdminToken]:
        """A fresh token and its claims."""
        exp = int(self._clock()) + self.ttl
        nonce = _b64(secrets.token_bytes(12))
        return f"{_PREFIX}.{exp}.{nonce}.{self._mac(exp, nonce)}", AdminToken(nonce, exp)

    def verify(self, token: str) -> AdminToken | None:
        """The token's claims when it is authentic, unexpired and not logged out; else None."""
        if not self.enabled or len(token) > _MAX_TOKEN_LENGTH:
            return None
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != _PREFIX or not parts[1].isdigit():
            return None
        exp, nonce, mac = int(parts[1]), parts[2], parts[3]
        if not hmac.compare_digest(mac.encode(), self._mac(exp, nonce).encode()):
            return None
        now = self._clock()
        if exp <= now or nonce in self._revoked:
            return None
        return AdminToken(nonce, exp)

    def revoke(self, claims: AdminToken) -> None:
        """Refuse this token from now on (logout)."""
        now = self._clock()
        self._revoked = {n: e for n, e in self._revoked.items() if e > now}
        self._revoked[claims.nonce] = claims.exp


@dataclass(slots=True)
class _Attempts:
    failures: int = 0
    first_failure: float = 0.0
    locked_until: float = 0.0
    lockouts: int = 0


class LoginGuard:
    """Slows down and locks out password guessing, per client address and overall.

    Every failure is answered after `delay` seconds; `max_failures` failures within `window`
    lock the address out for `lockout` seconds, doubled for each further lockout (up to
    `max_lockout`). A correct password during a lockout is refused too. Failures from all
    addresses together are capped the same way by `global_max_failures`, which then locks
    the login for everyone: many addresses cannot guess faster than that.
    """

    def __init__(
        self,
        *,
        delay: float = 0.5,
        max_failures: int = 5,
        global_max_failures: int = 50,
        window: float = 300.0,
        lockout: float = 60.0,
        max_lockout: float = 3600.0,
        max_tracked: int = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.delay = delay
        self.max_failures = max_failures
        self.global_max_failures = global_max_failures
        self.window = window
        self.lockout = lockout
        self.max_lockout = max_lockout
        self.max_tracked = max_tracked
        self._clock = clock
        self._peers: dict[str, _Attempts] = {}
        self._global = _Attempts()

    def retry_after(self, peer: str) -> float:
        """Seconds until `peer` may try again (0 when neither it nor the login is locked)."""
        locked_until = self._global.locked_until
        state = self._peers.get(peer)
        if state is not None:
            locked_until = max(locked_until, state.locked_until)
        return max(0.0, locked_until - self._clock())

    def failed(self, peer: str) -> None:
        """Record a wrong password from `peer`."""
        now = self._clock()
        state = self._peers.get(peer)
        if state is None:
            if len(self._peers) >= self.max_tracked:
                self._prune(now)
            state = self._peers[peer] = _Attempts()
        self._count(state, now, self.max_failures)
        self._count(self._global, now, self.global_max_failures)

    def _count(self, state: _Attempts, now: float, limit: int) -> None:
        if state.failures == 0 or now - state.first_failure > self.window:
            state.failures = 0
            state.first_failure = now
        state.failures += 1
        if state.failures >= limit:
            duration = min(self.lockout * 2**state.lockouts, self.max_lockout)
            state.locked_until = now + duration
            state.lockouts += 1
            state.failures = 0

    def succeeded(self, peer: str) -> None:
        """Forget `peer`'s failures after a correct password (the overall count stays)."""
        self._peers.pop(peer, None)

    def _prune(self, now: float) -> None:
        stale = [
            peer
            for peer, s in self._peers.items()
            if s.locked_until <= now and now - s.first_failure > self.window
        ]
        for peer in stale:
            del self._peers[peer]
        if len(self._peers) >= self.max_tracked:
            # Still full (a flood of addresses): drop the oldest half rather than grow.
            ordered = sorted(self._peers, key=lambda p: self._peers[p].first_failure)
            for peer in ordered[: len(ordered) // 2]:
                del self._peers[peer]
