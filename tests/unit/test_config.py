"""Configuration: defaults, file formats, environment, CLI overrides, validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from centrifugo_fast.cli import _option_overrides
from centrifugo_fast.config import load_config, parse_duration
from centrifugo_fast.errors import ConfigError


def _write(tmp_path: Path, data: Any, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else data)
    return path


def test_defaults_match_centrifugo() -> None:
    config, _ = load_config(None, environ={})
    assert config.http_server.port == 8000
    assert float(config.client.ping_interval) == 25 and float(config.client.pong_timeout) == 8
    assert config.client.channel_limit == 128
    assert config.client.queue_max_size == 1048576
    assert float(config.client.stale_close_delay) == 10
    assert config.websocket.message_size_limit == 65536
    assert config.http_api.handler_prefix == "/api"
    assert config.channel.max_length == 255 and config.channel.namespace_boundary == ":"
    assert config.engine.type == "memory"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("25s", 25), ("500ms", 0.5), ("1m30s", 90), ("720h", 2592000), ("0", 0), ("1.5s", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["25", "s", "10 s", "1x", 25])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_file_env_and_overrides_priority(tmp_path: Path) -> None:
    path = _write(tmp_path, {"http_server": {"port": 9000}, "client": {"channel_limit": 5}})
    config, _ = load_config(
        path,
        environ={"CENTRIFUGO_HTTP_SERVER_PORT": "9100", "CENTRIFUGO_CLIENT_INSECURE": "true"},
        overrides={"http_server.port": 9200},
    )
    assert config.http_server.port == 9200
    assert config.client.insecure is True
    assert config.client.channel_limit == 5


def test_env_lists_and_namespaces(tmp_path: Path) -> None:
    config, _ = load_config(
        None,
        environ={
            "CENTRIFUGO_CLIENT_ALLOWED_ORIGINS": "https://a.com https://b.com",
            "CENTRIFUGO_CHANNEL_NAMESPACES": '[{"name": "chat", "allow_publish_for_client": true}]',
        },
    )
    assert config.client.allowed_origins == ["https://a.com", "https://b.com"]
    assert config.channel.namespaces[0].name == "chat"
    assert config.channel.namespaces[0].allow_publish_for_client is True


def test_fast_switches_are_not_config(tmp_path: Path) -> None:
    _, warnings = load_config(None, environ={"CENTRIFUGO_FAST_NO_EXTENSIONS": "1"})
    assert warnings == []


def test_yaml_and_toml(tmp_path: Path) -> None:
    yml = _write(tmp_path, "client:\n  channel_limit: 7\n", "config.yaml")
    assert load_config(yml, environ={})[0].client.channel_limit == 7
    toml = _write(tmp_path, "[client]\nchannel_limit = 9\n", "config.toml")
    assert load_config(toml, environ={})[0].client.channel_limit == 9


def test_unknown_keys_warn(tmp_path: Path) -> None:
    path = _write(
        tmp_path, {"client": {"bogus": 1}, "channel": {"namespaces": [{"name": "ab", "x": 1}]}}
    )
    _, warnings = load_config(path, environ={})
    assert "unknown config key client.bogus, ignored" in warnings
    assert "unknown config key channel.namespaces[0].x, ignored" in warnings


def test_unsupported_options_warn_only_when_enabled(tmp_path: Path) -> None:
    path = _write(tmp_path, {"client": {"concurrency": 4}, "admin": {"enabled": False}})
    _, warnings = load_config(path, environ={})
    assert warnings == ["config option client.concurrency is not supported yet and has no effect"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"client": {"channel_limit": "x"}}, "client.channel_limit"),
        ({"client": {"ping_interval": "5s", "pong_timeout": "8s"}}, "client.ping_interval"),
        ({"client": {"ping_interval": 25}}, "client.ping_interval"),
        ({"http_server": {"port": 70000}}, "http_server.port"),
        ({"channel": {"namespaces": [{"name": "a"}]}}, "channel.namespaces[0].name"),
        ({"channel": {"namespaces": [{"name": "ab"}, {"name": "ab"}]}}, "defined twice"),
        ({"channel": {"without_namespace": {"history_size": 10}}}, "history_ttl"),
        ({"engine": {"type": "postgres"}}, "engine.type"),
        ({"log": {"level": "loud"}}, "log.level"),
        ({"http_api": {"error_mode": "custom"}}, "http_api.error_mode"),
    ],
)
def test_invalid_values_name_the_key(tmp_path: Path, data: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(_write(tmp_path, data), environ={})


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.json", environ={}, path_required=True)
    _, warnings = load_config(tmp_path / "absent.json", environ={})
    assert warnings and "not found" in warnings[0]


def test_unparsable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot parse"):
        load_config(_write(tmp_path, "{oops", "bad.yaml"), environ={})
    path = tmp_path / "x.json"
    path.write_text("[1]")
    with pytest.raises(ConfigError, match="object"):
        load_config(path, environ={})


def test_cli_option_overrides() -> None:
    assert _option_overrides(
        ["--client.insecure", "--http_server.port", "9", "--log.level=debug"]
    ) == {"client.insecure": True, "http_server.port": 9, "log.level": "debug"}
    with pytest.raises(ConfigError, match="unknown option"):
        _option_overrides(["--nope.x", "1"])
    with pytest.raises(ConfigError, match="invalid value"):
        _option_overrides(["--http_server.port", "abc"])


def test_v5_flat_keys_are_upgraded_with_a_warning(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "token_hmac_secret_key": "k",
            "port": 9001,
            "api_key": "a",
            "presence": True,
            "client_channel_limit": 3,
            "namespaces": [{"name": "chat", "allow_publish_for_client": True}],
        },
    )
    config, warnings = load_config(path, environ={})
    assert config.client.token.hmac_secret_key == "k"
    assert config.http_server.port == 9001 and config.http_api.key == "a"
    assert config.channel.without_namespace.presence is True
    assert config.client.channel_limit == 3
    assert config.channel.namespaces[0].name == "chat"
    assert (
        "config key token_hmac_secret_key is a Centrifugo v5 name, deprecated: "
        "use client.token.hmac_secret_key" in warnings
    )
    assert not any("unknown config key" in w for w in warnings)


def test_v6_wins_over_a_v5_duplicate(tmp_path: Path) -> None:
    path = _write(tmp_path, {"port": 1, "http_server": {"port": 2}})
    config, warnings = load_config(path, environ={})
    assert config.http_server.port == 2
    assert any("port (v5) ignored" in w for w in warnings)


def test_per_namespace_env_override(tmp_path: Path) -> None:
    path = _write(tmp_path, {"channel": {"namespaces": [{"name": "my-chat"}]}})
    config, warnings = load_config(
        path,
        environ={
            "CENTRIFUGO_CHANNEL_NAMESPACES_MY_CHAT_ALLOW_PUBLISH_FOR_CLIENT": "true",
            "CENTRIFUGO_CHANNEL_NAMESPACES_MY_CHAT_HISTORY_SIZE": "5",
            "CENTRIFUGO_CHANNEL_NAMESPACES_MY_CHAT_HISTORY_TTL": "30s",
        },
    )
    ns = config.channel.namespaces[0]
    assert ns.allow_publish_for_client and ns.history_size == 5 and float(ns.history_ttl) == 30
    assert not any("unknown environment" in w for w in warnings)


def test_unknown_env_var_warns() -> None:
    _, warnings = load_config(None, environ={"CENTRIFUGO_NO_SUCH_THING": "1"})
    assert warnings == ["unknown environment variable CENTRIFUGO_NO_SUCH_THING, ignored"]


def test_same_settings_in_every_format_give_the_same_config(tmp_path: Path) -> None:
    json_cfg = _write(
        tmp_path,
        {
            "http_server": {"port": 9100},
            "client": {
                "token": {"hmac_secret_key": "s"},
                "allowed_origins": ["https://a.com"],
                "ping_interval": "20s",
            },
            "channel": {"namespaces": [{"name": "chat", "allow_publish_for_client": True}]},
        },
    )
    yaml_cfg = _write(
        tmp_path,
        "http_server:\n  port: 9100\nclient:\n  token:\n    hmac_secret_key: s\n"
        "  allowed_origins: ['https://a.com']\n  ping_interval: 20s\n"
        "channel:\n  namespaces:\n    - name: chat\n      allow_publish_for_client: true\n",
        "config.yaml",
    )
    toml_cfg = _write(
        tmp_path,
        '[http_server]\nport = 9100\n[client]\nallowed_origins = ["https://a.com"]\n'
        'ping_interval = "20s"\n[client.token]\nhmac_secret_key = "s"\n'
        '[[channel.namespaces]]\nname = "chat"\nallow_publish_for_client = true\n',
        "config.toml",
    )
    env = {
        "CENTRIFUGO_HTTP_SERVER_PORT": "9100",
        "CENTRIFUGO_CLIENT_TOKEN_HMAC_SECRET_KEY": "s",
        "CENTRIFUGO_CLIENT_ALLOWED_ORIGINS": "https://a.com",
        "CENTRIFUGO_CLIENT_PING_INTERVAL": "20s",
        "CENTRIFUGO_CHANNEL_NAMESPACES": '[{"name":"chat","allow_publish_for_client":true}]',
    }
    configs = [
        load_config(json_cfg, environ={})[0],
        load_config(yaml_cfg, environ={})[0],
        load_config(toml_cfg, environ={})[0],
        load_config(None, environ=env)[0],
    ]
    assert all(c == configs[0] for c in configs[1:])
    assert configs[0].http_server.port == 9100


def test_personal_namespace_must_exist(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "client": {
                "subscribe_to_user_personal_channel": {
                    "enabled": True,
                    "personal_channel_namespace": "me",
                }
            }
        },
    )
    with pytest.raises(ConfigError, match="personal_channel_namespace"):
        load_config(path, environ={})


def test_audience_and_regex_are_exclusive(tmp_path: Path) -> None:
    path = _write(tmp_path, {"client": {"token": {"audience": "a", "audience_regex": "b"}}})
    with pytest.raises(ConfigError, match="mutually exclusive"):
        load_config(path, environ={})


@pytest.mark.parametrize(
    "data",
    [
        {"channel": {"namespaces": [{"name": "ab", "subscribe_proxy_enabled": True}]}},
        {"channel": {"without_namespace": {"subscription_type": "map"}}},
        {"channel": {"without_namespace": {"allow_tags_filter": True}}},
        {"client": {"proxy": {"connect": {"enabled": True}}}},
    ],
)
def test_out_of_scope_options_are_refused(tmp_path: Path, data: Any) -> None:
    with pytest.raises(ConfigError, match="not supported by centrifugo-fast"):
        load_config(_write(tmp_path, data), environ={})


def test_implemented_channel_options_do_not_warn(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "channel": {
                "namespaces": [
                    {
                        "name": "ab",
                        "allow_user_limited_channels": True,
                        "channel_regex": "^[a-z]+$",
                        "allow_presence_for_client": True,
                        "allow_history_for_subscriber": True,
                        "subscription_type": "stream",
                        "publication_data_format": "json",
                    }
                ]
            }
        },
    )
    assert load_config(path, environ={})[1] == []


def test_readme_lists_every_option() -> None:
    from centrifugo_fast.config.reference import BEGIN, END, markdown

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    assert readme[start:end] == markdown(), "run `centrifugo-fast configdoc` and update README"
