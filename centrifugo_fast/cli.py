"""Command line: run the server, plus `version`, `gentoken`, `genconfig`, `checkconfig`.

Options follow Centrifugo v6: `-c/--config FILE`, `-p/--port`, `-a/--address`, and any config
option as `--section.option VALUE` (booleans may be given bare: `--client.insecure`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import logging.handlers
import secrets
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .config.loader import _leaves, load_config
from .config.schema import Config
from .errors import ConfigError

#: the selector modules of the compiled hot paths (design.md section 3), as twins.LOADED names them
_TWIN_SELECTORS = ("protocol.frames", "core.fanout", "engine.history")
_SUBCOMMANDS = ("version", "gentoken", "gensubtoken", "genconfig", "checkconfig", "configdoc")
_LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "none": logging.CRITICAL + 10,
}


def _option_overrides(args: Sequence[str]) -> dict[str, Any]:
    """Turn `--a.b value`, `--a.b=value` and bare boolean `--a.b` into {"a.b": value}."""
    types = dict(_leaves(Config))
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(f"unexpected argument {arg!r}")
        name, eq, value = arg[2:].partition("=")
        ftype = types.get(name)
        if ftype is None:
            raise ConfigError(f"unknown option --{name}")
        if not eq:
            if ftype is bool and (i + 1 >= len(args) or args[i + 1].startswith("--")):
                value = "true"
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                raise ConfigError(f"option --{name} needs a value")
        overrides[name] = _convert(name, value, ftype)
        i += 1
    return overrides


def _convert(name: str, value: str, ftype: Any) -> Any:
    try:
        if ftype is bool:
            low = value.lower()
            if low not in ("1", "0", "true", "false", "t", "f"):
                raise ValueError(f"not a boolean: {value!r}")
            return low in ("1", "true", "t")
        if ftype is int:
            return int(value)
        if typing.get_origin(ftype) is list:
            return json.loads(value) if value.startswith("[") else value.split()
        return value
    except ValueError as exc:
        raise ConfigError(f"invalid value for --{name}: {exc}") from exc


class JsonFormatter(logging.Formatter):
    """One JSON object per line (`log.format: json`), with zerolog's field names as
    Centrifugo writes them: `level`, `time` (RFC 3339, UTC), `message`, `error`."""

    _LEVELS = {"WARNING": "warn", "CRITICAL": "fatal"}

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        stamp = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, Any] = {
            "level": self._LEVELS.get(record.levelname, record.levelname.lower()),
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


def _setup_logging(level: str, file: str = "", fmt: str = "text") -> None:
    handler: logging.Handler
    if file:
        # Reopened when logrotate moves the file away (no copytruncate needed).
        handler = logging.handlers.WatchedFileHandler(file)
    else:
        handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LOG_LEVELS.get(level, logging.INFO))


def _load(config_path: str | None, overrides: dict[str, Any] | None = None) -> Config:
    config, warnings = load_config(
        config_path or "config.json", overrides=overrides, path_required=config_path is not None
    )
    try:
        _setup_logging(config.log.level, config.log.file, config.log.format)
    except OSError as exc:
        raise ConfigError(f"log.file: cannot open {config.log.file}: {exc}") from exc
    log = logging.getLogger("centrifugo_fast")
    for warning in warnings:
        log.warning(warning)
    return config


def _cmd_gentoken(argv: Sequence[str]) -> int:
    from .auth.jwt import make_token

    parser = argparse.ArgumentParser(
        prog="centrifugo-fast gentoken", description="Print an HS256 connection JWT."
    )
    parser.add_argument("-c", "--config", default=None, help="config file")
    parser.add_argument("-u", "--user", default="", help="user ID (empty: anonymous)")
    parser.add_argument("-t", "--ttl", type=int, default=604800, help="seconds; -1: no exp")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the token")
    args = parser.parse_args(argv)
    config = _load(args.config)
    secret = config.client.token.hmac_secret_key
    if not secret:
        print("no client.token.hmac_secret_key in the configuration", file=sys.stderr)
        return 1
    token = make_token(secret, args.user, None if args.ttl < 0 else args.ttl)
    if args.quiet:
        print(token)
    else:
        ttl = "infinite" if args.ttl < 0 else f"{args.ttl}s"
        print(f'HMAC SHA-256 JWT for user "{args.user}" with expiration TTL {ttl}:\n{token}')
    return 0


def _cmd_gensubtoken(argv: Sequence[str]) -> int:
    from .auth.jwt import make_token

    parser = argparse.ArgumentParser(
        prog="centrifugo-fast gensubtoken", description="Print an HS256 subscription JWT."
    )
    parser.add_argument("-c", "--config", default=None, help="config file")
    parser.add_argument("-u", "--user", default="", help="user ID (empty: anonymous)")
    parser.add_argument("-s", "--channel", required=True, help="channel to grant")
    parser.add_argument("-t", "--ttl", type=int, default=604800, help="seconds; -1: no exp")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the token")
    args = parser.parse_args(argv)
    config = _load(args.config)
    token_cfg = (
        config.client.subscription_token
        if config.client.subscription_token.enabled
        else config.client.token
    )
    if not token_cfg.hmac_secret_key:
        print("no HMAC secret key for subscription tokens in the configuration", file=sys.stderr)
        return 1
    ttl = None if args.ttl < 0 else args.ttl
    token = make_token(token_cfg.hmac_secret_key, args.user, ttl, extra={"channel": args.channel})
    if args.quiet:
        print(token)
    else:
        shown = "infinite" if ttl is None else f"{ttl}s"
        print(
            f'HMAC SHA-256 JWT for user "{args.user}" and channel "{args.channel}" '
            f"with expiration TTL {shown}:\n{token}"
        )
    return 0


def _cmd_genconfig(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="centrifugo-fast genconfig",
        description="Write a minimal config with fresh random secrets (never overwrites).",
    )
    parser.add_argument("-c", "--config", default="config.json", help="file to write")
    args = parser.parse_args(argv)
    path = Path(args.config)
    if path.exists():
        print(f"{path} already exists; refusing to overwrite it", file=sys.stderr)
        return 1
    data = {
        "client": {
            "token": {"hmac_secret_key": secrets.token_urlsafe(64)},
            "allowed_origins": [],
        },
        "http_api": {"key": secrets.token_urlsafe(64)},
        "admin": {
            "enabled": False,
            "password": secrets.token_urlsafe(16),
            "secret": secrets.token_urlsafe(64),
        },
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    path.chmod(0o600)
    print(f"{path} written")
    return 0


def _cmd_checkconfig(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="centrifugo-fast checkconfig", description="Load and validate a config file."
    )
    parser.add_argument("-c", "--config", default="config.json", help="file to check")
    args = parser.parse_args(argv)
    _load(args.config)
    print(f"{args.config} is valid")
    return 0


def _print_twins() -> int:
    """Print which implementation each hot path runs (compiled or pure).

    Packagers and users check here that a wheel or binary really carries the compiled twins;
    with CENTRIFUGO_FAST_REQUIRE_EXTENSIONS=1 a missing one makes `version` exit 1.
    """
    import importlib

    from . import twins

    try:
        for selector in _TWIN_SELECTORS:
            importlib.import_module(f"centrifugo_fast.{selector}")
    except ImportError as exc:
        print(f"twins: {exc}", file=sys.stderr)
        return 1
    kinds = {"c": "compiled", "py": "pure"}
    print("twins: " + " ".join(f"{name}={kinds[twins.LOADED[name]]}" for name in _TWIN_SELECTORS))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `centrifugo-fast` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in _SUBCOMMANDS:
            command, rest = args[0], args[1:]
            if command == "version":
                print(f"centrifugo-fast v{__version__} (Python {sys.version.split()[0]})")
                return _print_twins()
            if command == "gentoken":
                return _cmd_gentoken(rest)
            if command == "gensubtoken":
                return _cmd_gensubtoken(rest)
            if command == "configdoc":
                from .config.reference import markdown

                print(markdown())
                return 0
            if command == "genconfig":
                return _cmd_genconfig(rest)
            return _cmd_checkconfig(rest)
        parser = argparse.ArgumentParser(
            prog="centrifugo-fast",
            description="Run the server. Subcommands: " + ", ".join(_SUBCOMMANDS) + ".",
            epilog="Any option can also be given as --section.option VALUE "
            "(e.g. --client.insecure, --log.level debug).",
        )
        parser.add_argument("-c", "--config", default=None, help="config file (JSON, YAML, TOML)")
        parser.add_argument("-p", "--port", type=int, default=None, help="http_server.port")
        parser.add_argument("-a", "--address", default=None, help="http_server.address")
        known, rest = parser.parse_known_args(args)
        overrides = _option_overrides(rest)
        if known.port is not None:
            overrides["http_server.port"] = known.port
        if known.address is not None:
            overrides["http_server.address"] = known.address
        config = _load(known.config, overrides)
    except ConfigError as exc:
        print(f"centrifugo-fast: {exc}", file=sys.stderr)
        return 1
    from .transport.server import run

    def reload() -> Config:
        return load_config(
            known.config or "config.json",
            overrides=overrides,
            path_required=known.config is not None,
        )[0]

    try:
        run(config, reload)
    except (OSError, ConfigError) as exc:
        print(f"centrifugo-fast: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
