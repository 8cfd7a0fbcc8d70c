"""Exceptions shared across layers."""

from __future__ import annotations

from .codes import Disconnect, ReplyError


class ConfigError(Exception):
    """The configuration is invalid; the message names the offending key."""


class ReplyErrorException(Exception):
    """Raised inside command handling to answer the command with a ReplyError."""

    def __init__(self, error: ReplyError) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error


class DisconnectException(Exception):
    """Raised inside command handling to close the connection with a Disconnect."""

    def __init__(self, disconnect: Disconnect) -> None:
        super().__init__(f"{disconnect.code}: {disconnect.reason}")
        self.disconnect = disconnect
