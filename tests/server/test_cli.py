"""The command line as users run it: a real process, exit codes, messages."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from centrifugo_fast.auth.jwt import TokenVerifier
from centrifugo_fast.config.schema import TokenConfig
from tests.serverproc import ROOT
from tests.wsclient import RawWebSocket


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "centrifugo_fast", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        cwd=cwd or ROOT,
    )


def test_version() -> None:
    result = _cli("version")
    assert result.returncode == 0
    assert result.stdout.startswith("centrifugo-fast v")


def test_invalid_config_exits_1_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"client": {"channel_limit": "many"}}))
    result = _cli("-c", str(path))
    assert result.returncode == 1
    assert "client.channel_limit" in result.stderr


def test_missing_explicit_config_exits_1(tmp_path: Path) -> None:
    result = _cli("-c", str(tmp_path / "absent.json"))
    assert result.returncode == 1 and "not found" in result.stderr


def test_unknown_flag_exits_1() -> None:
    result = _cli("--client.no_such_option", "1")
    assert result.returncode == 1 and "unknown option" in result.stderr


def test_gentoken_makes_a_verifiable_token(tmp_path: Path) -> None:
    secret = "cli-test-secret-" + "0123456789abcdef" * 4
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"client": {"token": {"hmac_secret_key": secret}}}))
    result = _cli("gentoken", "-c", str(path), "-u", "alice", "-t", "60")
    assert result.returncode == 0, result.stderr
    assert 'for user "alice" with expiration TTL 60s' in result.stdout
    token = result.stdout.strip().splitlines()[-1]
    claims = asyncio.run(
        TokenVerifier(TokenConfig(hmac_secret_key=secret)).verify_connection_token(token)
    )
    assert claims.user == "alice" and claims.expire_at > 0
    quiet = _cli("gentoken", "-c", str(path), "-u", "bob", "-q")
    assert quiet.stdout.count("\n") == 1


def test_gentoken_without_secret_fails(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{}")
    assert _cli("gentoken", "-c", str(path), "-u", "x").returncode == 1


def test_genconfig_then_checkconfig(tmp_path: Path) -> None:
    assert _cli("genconfig", "-c", "config.json", cwd=tmp_path).returncode == 0
    written = json.loads((tmp_path / "config.json").read_text())
    assert len(written["client"]["token"]["hmac_secret_key"]) >= 64
    assert (tmp_path / "config.json").stat().st_mode & 0o777 == 0o600
    assert _cli("genconfig", "-c", "config.json", cwd=tmp_path).returncode == 1  # no overwrite
    assert _cli("checkconfig", "-c", "config.json", cwd=tmp_path).returncode == 0


def test_insecure_client_mode(make_server: Any) -> None:
    srv = make_server({"client": {"insecure": True}})
    ws = RawWebSocket(srv.host, srv.port).open()
    assert "connect" in ws.connect()  # no token at all
    ws.send_json({"id": 2, "subscribe": {"channel": "locked:x"}})
    assert ws.reply(2) == {"id": 2, "subscribe": {}}
    ws.send_json({"id": 3, "publish": {"channel": "locked:x", "data": {"a": 1}}})
    assert ws.reply(3) == {"id": 3, "publish": {}}


def test_gensubtoken(tmp_path: Path) -> None:
    secret = "cli-test-secret-" + "0123456789abcdef" * 4
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"client": {"token": {"hmac_secret_key": secret}}}))
    result = _cli("gensubtoken", "-c", str(path), "-u", "alice", "-s", "$room", "-q")
    assert result.returncode == 0, result.stderr
    claims = asyncio.run(
        TokenVerifier(TokenConfig(hmac_secret_key=secret)).verify_subscription_token(
            result.stdout.strip()
        )
    )
    assert (claims.user, claims.channel) == ("alice", "$room")
    assert _cli("gensubtoken", "-c", str(path), "-u", "a").returncode == 2  # -s is required


def test_help_for_every_subcommand() -> None:
    for sub in ("gentoken", "gensubtoken", "genconfig", "checkconfig"):
        result = _cli(sub, "--help")
        assert result.returncode == 0 and "usage: centrifugo-fast " + sub in result.stdout
    assert "--section.option" in _cli("--help").stdout


def test_genconfig_output_runs_a_server(tmp_path: Path) -> None:
    from tests.serverproc import ServerProcess

    assert _cli("genconfig", "-c", "config.json", cwd=tmp_path).returncode == 0
    config = json.loads((tmp_path / "config.json").read_text())
    server = ServerProcess(config).start()
    try:
        token = _cli("gentoken", "-c", str(server.config_path), "-u", "42", "-q").stdout.strip()
        ws = RawWebSocket(server.host, server.port).open()
        assert "connect" in ws.connect(token)
    finally:
        server.close()


def test_sighup_reloads_channel_options_and_keys(tmp_path: Path) -> None:
    import signal
    import time

    from centrifugo_fast.auth.jwt import make_token
    from tests.serverproc import BASE_CONFIG, SECRET, ServerProcess, merge

    server = ServerProcess(merge(BASE_CONFIG, {})).start()
    try:
        ws = RawWebSocket(server.host, server.port).open()
        ws.connect(make_token(SECRET, "u", 3600))
        ws.send_json({"id": 2, "subscribe": {"channel": "locked:x"}})
        assert ws.reply(2)["error"]["code"] == 103
        new_secret = "rotated-secret-" + "0123456789abcdef" * 4
        config = merge(
            BASE_CONFIG,
            {
                "client": {"token": {"hmac_secret_key": new_secret}},
                "channel": {"namespaces": [{"name": "locked", "allow_subscribe_for_client": True}]},
            },
        )
        server.config_path.write_text(json.dumps(config))
        assert server.proc is not None
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "reloaded" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        # The open connection survived and now sees the new options.
        ws.send_json({"id": 3, "subscribe": {"channel": "locked:x"}})
        assert ws.reply(3) == {"id": 3, "subscribe": {}}
        fresh = RawWebSocket(server.host, server.port).open()
        assert "connect" in fresh.connect(make_token(new_secret, "v", 60))
        old = RawWebSocket(server.host, server.port).open()
        old.send_json({"id": 1, "connect": {"token": make_token(SECRET, "v", 60)}})
        assert old.close_code() == 3500
        # A broken file on SIGHUP keeps the running configuration.
        server.config_path.write_text("{broken")
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "reload failed" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "reload failed" in server.output()
        ws.send_json({"id": 4, "unsubscribe": {"channel": "locked:x"}})
        assert ws.reply(4) == {"id": 4, "unsubscribe": {}}
    finally:
        server.close()


def test_checkconfig_bad_file_exits_1_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("client:\n  ping_interval: 5s\n  pong_timeout: 8s\n")
    result = _cli("checkconfig", "-c", str(path))
    assert result.returncode == 1
    assert "client.ping_interval" in result.stderr
    refused = tmp_path / "refused.json"
    refused.write_text(
        json.dumps({"channel": {"namespaces": [{"name": "ab", "publish_proxy_enabled": True}]}})
    )
    result = _cli("checkconfig", "-c", str(refused))
    assert result.returncode == 1 and "publish_proxy_enabled" in result.stderr


def test_version_names_the_twin_of_each_hot_path() -> None:
    # Wheels, the binary and the OS packages are checked through this line.
    from centrifugo_fast import twins

    result = _cli("version")
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[1]
    assert line.startswith("twins: ")
    kinds = dict(item.split("=") for item in line.removeprefix("twins: ").split())
    assert set(kinds) == {"protocol.frames", "core.fanout", "engine.history"}
    if twins.extensions_disabled():
        assert set(kinds.values()) == {"pure"}
    elif twins.extensions_required():
        assert set(kinds.values()) == {"compiled"}
