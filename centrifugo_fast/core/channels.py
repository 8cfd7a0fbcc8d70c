"""Channel names: namespaces, name checks, user-limited and private channels (spec §4)."""

from __future__ import annotations

import re

from .. import codes
from ..config.schema import ChannelConfig, ChannelOptions, PersonalChannelConfig
from ..errors import ReplyErrorException


class ChannelRules:
    """Resolves a channel's namespace options and answers questions about its name."""

    def __init__(self, config: ChannelConfig, personal: PersonalChannelConfig) -> None:
        self.config = config
        self.personal = personal
        self.private_prefix = config.private_prefix
        self.boundary = config.namespace_boundary
        self.user_boundary = config.user_boundary
        self.user_separator = config.user_separator
        self.max_length = config.max_length
        self._namespaces: dict[str, ChannelOptions] = {ns.name: ns for ns in config.namespaces}
        self._default = config.without_namespace
        self._regexes: dict[str, re.Pattern[str]] = {}
        for opts in (self._default, *config.namespaces):
            if opts.channel_regex:
                self._regexes[opts.channel_regex] = re.compile(opts.channel_regex)

    def resolve(self, channel: str) -> tuple[str, str, ChannelOptions]:
        """(namespace, name after the namespace, options); error 102 for an unknown namespace."""
        rest = channel
        if self.private_prefix and rest.startswith(self.private_prefix):
            rest = rest[len(self.private_prefix) :]
        if self.boundary and self.boundary in rest:
            name, tail = rest.split(self.boundary, 1)
            opts = self._namespaces.get(name)
            if opts is None:
                raise ReplyErrorException(codes.ERROR_UNKNOWN_CHANNEL)
            return name, tail, opts
        return "", channel, self._default

    def namespace_of(self, channel: str) -> str:
        """The namespace name of `channel` ("" for channels without one)."""
        return self.resolve(channel)[0]

    def options(self, channel: str) -> ChannelOptions:
        """Options of the channel's namespace; error 102 when the namespace is unknown."""
        return self.resolve(channel)[2]

    def check_length(self, channel: str) -> None:
        """Client-side operations need a name within channel.max_length (error 107)."""
        if self.max_length > 0 and len(channel) > self.max_length:
            raise ReplyErrorException(codes.ERROR_BAD_REQUEST)

    def check_name(self, channel: str, tail: str, opts: ChannelOptions) -> None:
        """Client-side names: the namespace's channel_regex on the tail, else ASCII (107)."""
        if opts.channel_regex:
            if self._regexes[opts.channel_regex].search(tail) is None:
                raise ReplyErrorException(codes.ERROR_BAD_REQUEST)
        elif not channel.isascii():
            raise ReplyErrorException(codes.ERROR_BAD_REQUEST)

    def is_private(self, channel: str) -> bool:
        """True for legacy private channels (private prefix), which need a token."""
        return bool(self.private_prefix) and channel.startswith(self.private_prefix)

    def is_user_limited(self, channel: str, opts: ChannelOptions) -> bool:
        """True when the namespace allows `#` channels and the name has the user boundary."""
        return opts.allow_user_limited_channels and self.user_boundary in channel

    def user_allowed(self, channel: str, user: str) -> bool:
        """Whether `user` is listed after the last user boundary of a user-limited channel."""
        if not user:
            return False
        allowed = channel.rsplit(self.user_boundary, 1)[1]
        return user in allowed.split(self.user_separator)

    def personal_channel(self, user: str) -> str:
        """The personal channel of `user` (client.subscribe_to_user_personal_channel)."""
        name = self.user_boundary + user
        namespace = self.personal.personal_channel_namespace
        return f"{namespace}{self.boundary}{name}" if namespace else name

    def data_format(self, opts: ChannelOptions) -> str:
        """The effective publication_data_format for a namespace."""
        return opts.publication_data_format or self.config.publication_data_format
