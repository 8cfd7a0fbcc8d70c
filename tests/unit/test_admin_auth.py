"""Admin tokens, the login guard and config masking (centrifugo_fast/admin), without a server."""

from __future__ import annotations

import msgspec
import pytest

from centrifugo_fast.admin.auth import AdminTokens, LoginGuard
from centrifugo_fast.admin.config_view import MASK, is_secret_name, masked_config
from centrifugo_fast.admin.http import _peer
from centrifugo_fast.config.schema import Config
from centrifugo_fast.transport.http import Request


class Clock:
    """A settable clock."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_token_roundtrip_and_expiry() -> None:
    clock = Clock()
    tokens = AdminTokens("secret", ttl=60, clock=clock)
    token, claims = tokens.mint()
    assert claims.exp == clock.now + 60
    assert tokens.verify(token) == claims
    clock.now += 59
    assert tokens.verify(token) == claims
    clock.now += 1
    assert tokens.verify(token) is None


def test_tokens_are_bound_to_the_secret_and_untamperable() -> None:
    tokens = AdminTokens("secret")
    token, _ = tokens.mint()
    assert AdminTokens("secret").verify(token) is not None  # stateless: a restart keeps it
    assert AdminTokens("other").verify(token) is None
    prefix, exp, nonce, mac = token.split(".")
    assert tokens.verify(f"{prefix}.{int(exp) + 1}.{nonce}.{mac}") is None
    assert tokens.verify(f"{prefix}.{exp}.{nonce}x.{mac}") is None
    assert tokens.verify(f"{prefix}.{exp}.{nonce}.{mac[:-1]}") is None
    assert tokens.verify(f"cfa2.{exp}.{nonce}.{mac}") is None
    for junk in ["", "a.b.c", "cfa1.x.y.z", "cfa1.-5.n.m", token + "." + "a" * 300]:
        assert tokens.verify(junk) is None
    # An empty secret never verifies anything (admin.secret unset).
    empty = AdminTokens("")
    assert empty.verify(empty.mint()[0]) is None


def test_revoked_tokens_stay_refused_until_they_expire() -> None:
    clock = Clock()
    tokens = AdminTokens("secret", ttl=60, clock=clock)
    first, first_claims = tokens.mint()
    second, _ = tokens.mint()
    tokens.revoke(first_claims)
    assert tokens.verify(first) is None
    assert tokens.verify(second) is not None
    clock.now += 61
    third, third_claims = tokens.mint()
    tokens.revoke(third_claims)  # prunes the expired revocation
    assert first_claims.nonce not in tokens._revoked


def test_login_guard_locks_out_and_backs_off() -> None:
    clock = Clock()
    guard = LoginGuard(max_failures=3, window=100, lockout=10, max_lockout=25, clock=clock)
    for _ in range(2):
        guard.failed("a")
    assert guard.retry_after("a") == 0
    guard.failed("a")
    assert guard.retry_after("a") == 10
    assert guard.retry_after("b") == 0  # per client
    clock.now += 10
    assert guard.retry_after("a") == 0
    for _ in range(3):
        guard.failed("a")
    assert guard.retry_after("a") == 20  # doubled
    clock.now += 20
    for _ in range(3):
        guard.failed("a")
    assert guard.retry_after("a") == 25  # capped
    guard.succeeded("a")
    assert guard.retry_after("a") == 0


def test_login_guard_forgets_old_failures_and_stays_bounded() -> None:
    clock = Clock()
    guard = LoginGuard(max_failures=3, window=100, lockout=10, max_tracked=4, clock=clock)
    guard.failed("a")
    guard.failed("a")
    clock.now += 101
    guard.failed("a")  # the earlier two are outside the window
    assert guard.retry_after("a") == 0
    for i in range(20):
        guard.failed(f"peer{i}")
    assert len(guard._peers) <= 4


def test_login_guard_caps_failures_from_all_addresses_together() -> None:
    clock = Clock()
    guard = LoginGuard(max_failures=3, global_max_failures=10, window=100, lockout=10, clock=clock)
    for i in range(9):  # nine addresses, each under its own limit
        guard.failed(f"10.0.0.{i}")
    assert guard.retry_after("10.0.0.1") == 0 and guard.retry_after("192.0.2.1") == 0
    guard.failed("10.0.0.9")  # the tenth failure overall locks the login for everyone
    assert guard.retry_after("192.0.2.1") == 10
    guard.succeeded("10.0.0.9")  # a correct password does not reset the overall count
    assert guard.retry_after("10.0.0.9") == 10
    clock.now += 10
    assert guard.retry_after("192.0.2.1") == 0
    for i in range(10):
        guard.failed(f"10.0.1.{i}")
    assert guard.retry_after("192.0.2.1") == 20  # backs off like a single address


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("", "*"),
    ],
)
def test_failed_logins_are_counted_per_address_or_ipv6_64(peer: str, key: str) -> None:
    request = Request("POST", "/admin/auth", "", {}, b"", True, peer=peer)
    assert _peer(request) == key


def test_secret_names() -> None:
    for name in [
        "key",
        "hmac_secret_key",
        "hmac_previous_secret_key",
        "password",
        "sentinel_password",
        "secret",
        "key_pem",
    ]:
        assert is_secret_name(name), name
    for name in [
        "rsa_public_key",
        "ecdsa_public_key",
        "cert_pem",
        "client_name",
        "user_id_claim",
        "handler_prefix",
        "keyspace",
    ]:
        assert not is_secret_name(name), name


def test_masked_config() -> None:
    config = msgspec.convert(
        {
            "http_api": {"key": "k1"},
            "admin": {"password": "p1", "secret": "s1", "enabled": True},
            "client": {
                "token": {"hmac_secret_key": "h1", "hmac_previous_secret_key_valid_until": 5}
            },
            "engine": {"redis": {"address": ["rediss://u:pw@host:6379", "host2:6379"]}},
        },
        Config,
    )
    view = masked_config(config)
    assert view["http_api"]["key"] == MASK
    assert view["admin"]["password"] == view["admin"]["secret"] == MASK
    assert view["admin"]["enabled"] is True
    assert view["client"]["token"]["hmac_secret_key"] == MASK
    # Numbers are settings, not secrets, whatever their name.
    assert view["client"]["token"]["hmac_previous_secret_key_valid_until"] == 5
    assert view["client"]["token"]["hmac_previous_secret_key"] == ""
    assert view["engine"]["redis"]["address"] == ["rediss://********@host:6379", "host2:6379"]
    assert view["channel"]["history_meta_ttl"] == "720h"
    assert view["client"]["pong_timeout"] == "8s"
    encoded = msgspec.json.encode(view)
    for secret in (b'"k1"', b'"p1"', b'"s1"', b'"h1"', b"pw@"):
        assert secret not in encoded


def test_web_assets_are_package_data() -> None:
    # A wheel must carry every page asset: each file of admin/web matches a package-data glob.
    import fnmatch
    import tomllib
    from pathlib import Path

    import centrifugo_fast

    root = Path(__file__).resolve().parents[2]
    pyproject = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["centrifugo_fast"]
    # The imported package: the source tree, or the installed wheel in `make wheel`.
    package = Path(centrifugo_fast.__file__).parent
    files = [p.relative_to(package).as_posix() for p in (package / "admin" / "web").iterdir()]
    assert {"admin/web/index.html", "admin/web/app.js", "admin/web/app.css"} <= set(files)
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
