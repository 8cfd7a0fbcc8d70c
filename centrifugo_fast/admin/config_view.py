"""The running configuration as the admin config page shows it: secrets masked.

Masking is by option name, and by shape for values that embed credentials (the userinfo of
a URL such as `redis://user:password@host`), so an option added later with a secret-looking
name is masked without anyone remembering to list it here.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ..config.schema import Config, Duration

MASK = "********"

#: Option names whose values are credentials.
_SECRET_NAME = re.compile(r"(secret|password|passwd|(^|_)key$|key_pem$|(^|_)token$)")
#: Names matching _SECRET_NAME that hold public material or plain settings.
_PUBLIC_NAMES = frozenset({"rsa_public_key", "ecdsa_public_key"})
#: `scheme://user:pass@` or `scheme://token@` in any string value.
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def is_secret_name(name: str) -> bool:
    """True for option names that hold credentials (`http_api.key`, `admin.password`, ...)."""
    return name not in _PUBLIC_NAMES and _SECRET_NAME.search(name) is not None


def _duration(seconds: float) -> str:
    if seconds == 0:
        return "0s"
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds >= 1 and seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds * 1000:g}ms"


def _mask_urls(text: str) -> str:
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


def _walk(value: Any, name: str) -> Any:
    if isinstance(value, msgspec.Struct):
        return {
            field: _walk(getattr(value, field), field) for field in type(value).__struct_fields__
        }
    if isinstance(value, dict):
        return {str(k): _walk(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(item, name) for item in value]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        if value and is_secret_name(name):
            return MASK
        return _mask_urls(value)
    if isinstance(value, Duration):
        return _duration(float(value))
    return value


def masked_config(config: Config) -> dict[str, Any]:
    """The configuration as nested JSON-ready values, every secret replaced by MASK."""
    result: dict[str, Any] = _walk(config, "")
    return result
