"""Channel names: namespace resolution and name checks (spec/server-api.md §4.1-4.2)."""

from __future__ import annotations

from .. import codes
from ..config.schema import ChannelConfig, ChannelOptions
from ..errors import ReplyErrorException


class ChannelRules:
    """Resolves a channel's namespace options and validates names for client commands."""

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self.private_prefix = config.private_prefix
        self.boundary = config.namespace_boundary
        self.max_length = config.max_length
        self._namespaces: dict[str, ChannelOptions] = {ns.name: ns for ns in config.namespaces}
        self._default = config.without_namespace

    def namespace_of(self, channel: str) -> str:
        """The namespace name of `channel` ("" for channels without one)."""
        rest = channel
        if self.private_prefix and rest.startswith(self.private_prefix):
            rest = rest[len(self.private_prefix) :]
        if self.boundary and self.boundary in rest:
            return rest.split(self.boundary, 1)[0]
        return ""

    def options(self, channel: str) -> ChannelOptions:
        """Options of the channel's namespace; error 102 when the namespace is unknown."""
        name = self.namespace_of(channel)
        if not name:
            return self._default
        opts = self._namespaces.get(name)
        if opts is None:
            raise ReplyErrorException(codes.ERROR_UNKNOWN_CHANNEL)
        return opts

    def check_client_name(self, channel: str) -> None:
        """Client-side operations need a name within max_length (error 107)."""
        if len(channel) > self.max_length:
            raise ReplyErrorException(codes.ERROR_BAD_REQUEST)

    def is_private(self, channel: str) -> bool:
        """True for legacy private channels (private prefix), which need a token."""
        return bool(self.private_prefix) and channel.startswith(self.private_prefix)

    def data_format(self, opts: ChannelOptions) -> str:
        """The effective publication_data_format for a namespace."""
        return opts.publication_data_format or self.config.publication_data_format
