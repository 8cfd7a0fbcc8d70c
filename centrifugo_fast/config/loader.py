"""Load a Config from a file, `CENTRIFUGO_*` environment variables and CLI overrides.

Priority is Centrifugo's: CLI flags > environment > file > defaults. Unknown keys and options
that this server does not implement yet are reported as warnings (never silently ignored);
invalid values raise ConfigError naming the key.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from ..errors import ConfigError
from .schema import ChannelOptions, Config, Duration, TokenConfig
from .support import is_refused, is_supported
from .tls import validate_tls
from .v5 import upgrade

_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_NAMESPACE_NAME_RE = re.compile(r"^[-a-zA-Z0-9_.]{2,}$")
_LOG_LEVELS = ("none", "trace", "debug", "info", "warn", "error")
_DATA_FORMATS = ("", "json", "json_object", "binary")


def parse_duration(value: object) -> Duration:
    """Parse a Go duration string ("1m30s", "500ms", "0") into seconds."""
    if not isinstance(value, str):
        raise ValueError(f'expected a duration string like "25s", got {value!r}')
    text = value.strip()
    if text in ("0", ""):
        return Duration(0.0)
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    total = 0.0
    pos = 0
    for match in _DURATION_RE.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(body) or pos == 0:
        raise ValueError(f'invalid duration {value!r} (use Go syntax such as "25s", "500ms")')
    return Duration(sign * total)


def _dec_hook(tp: type, obj: Any) -> Any:
    if tp is Duration:
        return parse_duration(obj)
    raise NotImplementedError(f"unsupported config type {tp}")


def _struct_fields(tp: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(tp)
    return {f: hints[f] for f in tp.__struct_fields__}


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _leaves(tp: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, ftype in _struct_fields(tp).items():
        path = f"{prefix}{name}"
        if _is_struct(ftype):
            yield from _leaves(ftype, path + ".")
        else:
            yield path, ftype


def _read_file(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    text = path.read_bytes()
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif suffix == ".toml":
            data = tomllib.loads(text.decode())
        else:
            data = json.loads(text) if text.strip() else {}
    except Exception as exc:
        raise ConfigError(f"cannot parse config file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold an object at the top level")
    return data


def _env_value(raw: str, ftype: Any, name: str) -> Any:
    origin = typing.get_origin(ftype)
    try:
        if ftype is bool:
            low = raw.strip().lower()
            if low in ("1", "t", "true"):
                return True
            if low in ("0", "f", "false"):
                return False
            raise ValueError(f"not a boolean: {raw!r}")
        if ftype is int:
            return int(raw)
        if ftype is float:
            return float(raw)
        if ftype is str or ftype is Duration:
            return raw
        if origin is list and typing.get_args(ftype) == (str,):
            stripped = raw.strip()
            return json.loads(stripped) if stripped.startswith("[") else stripped.split()
        return json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"invalid value of environment variable {name}: {exc}") from exc


def _set_path(data: dict[str, Any], path: str, value: Any) -> None:
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _namespace_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> set[str]:
    """Apply CENTRIFUGO_CHANNEL_NAMESPACES_<NAME>_<OPTION> to namespaces already defined."""
    namespaces = data.get("channel", {}).get("namespaces")
    if not isinstance(namespaces, list):
        return set()
    option_types = _struct_fields(ChannelOptions)
    used = set()
    for ns in namespaces:
        if not isinstance(ns, dict) or not isinstance(ns.get("name"), str):
            continue
        prefix = "CENTRIFUGO_CHANNEL_NAMESPACES_" + re.sub(r"[-.]", "_", ns["name"]).upper() + "_"
        for option, ftype in option_types.items():
            name = prefix + option.upper()
            raw = env.get(name, "")
            if raw != "":
                ns[option] = _env_value(raw, ftype, name)
                used.add(name)
    return used


def _unknown_keys(data: Mapping[str, Any], tp: Any, prefix: str) -> Iterator[str]:
    fields = _struct_fields(tp)
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            yield path
            continue
        ftype = fields[key]
        if _is_struct(ftype) and isinstance(value, Mapping):
            yield from _unknown_keys(value, ftype, path + ".")
        elif typing.get_origin(ftype) is list and isinstance(value, list):
            (item_type,) = typing.get_args(ftype)
            if _is_struct(item_type):
                for i, item in enumerate(value):
                    if isinstance(item, Mapping):
                        yield from _unknown_keys(item, item_type, f"{path}[{i}].")


def _set_leaves(data: Mapping[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _set_leaves(value, path + ".")
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for i, item in enumerate(value):
                yield from _set_leaves(item, f"{path}[{i}].")
        else:
            yield path, value


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    path_required: bool = False,
) -> tuple[Config, list[str]]:
    """Build the Config and return it with the warnings to log."""
    warnings: list[str] = []
    data: dict[str, Any] = {}
    if path is not None:
        file = Path(path)
        if file.exists():
            data = _read_file(file)
        elif path_required:
            raise ConfigError(f"config file {file} not found")
        else:
            warnings.append(f"config file {file} not found, using defaults")
    warnings += upgrade(data, frozenset(Config.__struct_fields__))
    env = os.environ if environ is None else environ
    used_env: set[str] = set()
    for leaf, ftype in _leaves(Config):
        name = "CENTRIFUGO_" + leaf.upper().replace(".", "_")
        raw = env.get(name, "")
        if raw != "":
            used_env.add(name)
            _set_path(data, leaf, _env_value(raw, ftype, name))
    used_env |= _namespace_env_overrides(data, env)
    for name in sorted(env):
        if (
            name.startswith("CENTRIFUGO_")
            and not name.startswith(("CENTRIFUGO_FAST_", "CENTRIFUGO_VAR_"))
            and name not in used_env
            and env[name] != ""
        ):
            warnings.append(f"unknown environment variable {name}, ignored")
    known = {name for name, _ in _leaves(Config)}
    for leaf, value in (overrides or {}).items():
        if leaf not in known:
            raise ConfigError(f"unknown option {leaf}")
        _set_path(data, leaf, value)
    if isinstance(data.get("engine", {}).get("redis", {}).get("address"), str):
        data["engine"]["redis"]["address"] = [data["engine"]["redis"]["address"]]
    warnings += [f"unknown config key {key}, ignored" for key in _unknown_keys(data, Config, "")]
    try:
        config = msgspec.convert(data, Config, dec_hook=_dec_hook, str_keys=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {_describe(exc)}") from exc
    for leaf, value in _set_leaves(data, ""):
        if is_refused(leaf, value):
            raise ConfigError(f"config option {leaf} is not supported by centrifugo-fast")
        if not is_supported(leaf, value):
            warnings.append(f"config option {leaf} is not supported yet and has no effect")
    validate(config)
    return config, warnings


def _describe(exc: msgspec.ValidationError) -> str:
    # msgspec says "... - at `$.client.ping_interval`"; name the key the way users write it.
    text = str(exc)
    match = re.search(r" - at `\$\.?(.*)`$", text)
    if match:
        return f"{match.group(1)}: {text[: match.start()]}"
    return text


def _validate_options(opts: ChannelOptions, where: str) -> None:
    if (opts.history_size > 0) != (opts.history_ttl > 0):
        raise ConfigError(f"{where}: history_size and history_ttl must both be set or both be 0")
    if opts.history_size < 0 or opts.history_ttl < 0:
        raise ConfigError(f"{where}: history_size and history_ttl must not be negative")
    if not float(opts.history_ttl).is_integer():
        raise ConfigError(f"{where}.history_ttl must be a whole number of seconds")
    if opts.force_recovery and opts.history_size == 0:
        raise ConfigError(f"{where}.force_recovery requires history_size and history_ttl")
    if opts.force_recovery_mode not in ("", "stream", "cache"):
        raise ConfigError(f"{where}.force_recovery_mode must be one of stream, cache")
    if opts.publication_data_format not in _DATA_FORMATS:
        raise ConfigError(
            f"{where}.publication_data_format must be one of json, json_object, binary"
        )
    for delta in opts.allowed_delta_types:
        if delta != "fossil":
            raise ConfigError(f"{where}.allowed_delta_types: unknown delta type {delta!r}")
    if opts.channel_regex:
        try:
            re.compile(opts.channel_regex)
        except re.error as exc:
            raise ConfigError(f"{where}.channel_regex: {exc}") from exc


def _validate_token_keys(token: TokenConfig, where: str) -> None:
    """Public keys must parse and regexes compile, so a bad file fails at checkconfig."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    for name in ("rsa_public_key", "ecdsa_public_key"):
        pem = getattr(token, name)
        if pem:
            try:
                load_pem_public_key(pem.encode())
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{where}.{name}: not a PEM public key ({exc})") from exc
    for name in ("audience_regex", "issuer_regex"):
        pattern = getattr(token, name)
        if pattern:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"{where}.{name}: {exc}") from exc
    if token.jwks_public_endpoint and not token.jwks_public_endpoint.startswith(
        ("http://", "https://")
    ):
        raise ConfigError(f"{where}.jwks_public_endpoint must be an http(s) URL")


def _validate_redis(config: Config) -> None:
    """engine.redis: addresses must parse; timeouts and TTLs must be positive."""
    redis = config.engine.redis
    if not redis.prefix:
        raise ConfigError("engine.redis.prefix must not be empty")
    for name in ("connect_timeout", "io_timeout", "presence_ttl"):
        if getattr(redis, name) <= 0:
            raise ConfigError(f"engine.redis.{name} must be positive")
    if redis.db < 0:
        raise ConfigError("engine.redis.db must not be negative")
    from ..engine.redis.address import AddressError, shard_specs

    try:
        shard_specs(redis)
    except AddressError as exc:
        raise ConfigError(str(exc)) from exc


def validate(config: Config) -> None:
    """Check cross-field rules; raise ConfigError naming the key."""
    if not 0 < config.http_server.port < 65536:
        raise ConfigError("http_server.port must be between 1 and 65535")
    if config.log.level not in _LOG_LEVELS:
        raise ConfigError(f"log.level must be one of {', '.join(_LOG_LEVELS)}")
    if config.log.format not in ("text", "json"):
        raise ConfigError("log.format must be text or json")
    for name in ("health", "prometheus"):
        prefix = getattr(config, name).handler_prefix
        if prefix and not prefix.startswith("/"):
            raise ConfigError(f"{name}.handler_prefix must be empty or start with /")
    validate_tls(config)
    if config.engine.type not in ("memory", "redis"):
        raise ConfigError("engine.type must be memory or redis")
    if config.engine.type == "redis":
        _validate_redis(config)
    client = config.client
    if client.ping_interval > 0 and client.pong_timeout > 0:
        if client.ping_interval <= client.pong_timeout:
            raise ConfigError("client.ping_interval must be greater than client.pong_timeout")
    for name in ("channel_limit", "queue_max_size", "connection_limit", "user_connection_limit"):
        if getattr(client, name) < 0:
            raise ConfigError(f"client.{name} must not be negative")
    if config.websocket.message_size_limit <= 0:
        raise ConfigError("websocket.message_size_limit must be positive")
    if config.http_api.error_mode not in ("", "transport"):
        raise ConfigError('http_api.error_mode must be "" or "transport"')
    for prefix_key in ("http_api.handler_prefix", "websocket.handler_prefix"):
        section, key = prefix_key.split(".")
        value = getattr(getattr(config, section), key)
        if not value.startswith("/"):
            raise ConfigError(f"{prefix_key} must start with /")
    if not 0 <= config.http_server.internal_port < 65536:
        raise ConfigError("http_server.internal_port must be between 1 and 65535 (or 0: unset)")
    if config.admin.handler_prefix and not config.admin.handler_prefix.startswith("/"):
        raise ConfigError("admin.handler_prefix must be empty or start with /")
    channel = config.channel
    personal = client.subscribe_to_user_personal_channel
    names = {ns.name for ns in channel.namespaces}
    if personal.enabled and personal.personal_channel_namespace:
        if personal.personal_channel_namespace not in names:
            raise ConfigError(
                "client.subscribe_to_user_personal_channel.personal_channel_namespace "
                f"{personal.personal_channel_namespace!r} is not a defined namespace"
            )
    for section in ("token", "subscription_token"):
        token = getattr(client, section)
        _validate_token_keys(token, f"client.{section}")
        for claim in ("audience", "issuer"):
            if getattr(token, claim) and getattr(token, claim + "_regex"):
                raise ConfigError(
                    f"client.{section}.{claim} and client.{section}.{claim}_regex "
                    "are mutually exclusive"
                )
    if channel.max_length <= 0:
        raise ConfigError("channel.max_length must be positive")
    if channel.publication_data_format not in _DATA_FORMATS:
        raise ConfigError(
            "channel.publication_data_format must be one of json, json_object, binary"
        )
    _validate_options(channel.without_namespace, "channel.without_namespace")
    seen: set[str] = set()
    for i, ns in enumerate(channel.namespaces):
        where = f"channel.namespaces[{i}]"
        if not _NAMESPACE_NAME_RE.match(ns.name):
            raise ConfigError(f"{where}.name {ns.name!r} must match {_NAMESPACE_NAME_RE.pattern}")
        if ns.name in seen:
            raise ConfigError(f"{where}.name {ns.name!r} is defined twice")
        seen.add(ns.name)
        _validate_options(ns, where)
        if ns.history_ttl > (ns.history_meta_ttl or channel.history_meta_ttl):
            raise ConfigError(f"{where}.history_ttl must not exceed the history meta TTL")
