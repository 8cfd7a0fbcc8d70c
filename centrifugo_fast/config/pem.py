"""PEM values of TLS options: raw PEM text, base64 of it, or a file path (tried in that order,
as Centrifugo does), so a certificate can come from a file, a secret store or an env var."""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

from ..errors import ConfigError

_PEM_BLOCK = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----[\s\S]+?-----END [A-Z0-9 ]+-----")


def _is_pem(data: bytes) -> bool:
    return _PEM_BLOCK.search(data) is not None


def load_pem(value: str, option: str) -> bytes:
    """The PEM bytes of a TLS option value; ConfigError naming `option` when it is none."""
    raw = value.encode()
    if _is_pem(raw):
        return raw
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if decoded and _is_pem(decoded):
        return decoded
    path = Path(value)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):
        is_file = False
    if is_file:
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{option}: cannot read {value}: {exc}") from exc
        if not _is_pem(content):
            raise ConfigError(f"{option}: file {value} does not hold PEM data")
        return content
    raise ConfigError(f"{option}: not PEM text, base64-encoded PEM or the path of a PEM file")
