"""Code catalogs and channel namespace rules."""

from __future__ import annotations

from typing import TypeVar

import pytest

from centrifugo_fast import codes
from centrifugo_fast.config.schema import (
    ChannelConfig,
    ChannelOptions,
    NamespaceConfig,
    PersonalChannelConfig,
)
from centrifugo_fast.core.channels import ChannelRules
from centrifugo_fast.errors import ReplyErrorException

T = TypeVar("T")


def _catalog(kind: type[T]) -> list[T]:
    return [v for k, v in vars(codes).items() if isinstance(v, kind) and k.isupper()]


def test_disconnect_codes_and_reconnect_ranges() -> None:
    disconnects = _catalog(codes.Disconnect)
    assert len({d.code for d in disconnects}) == len(disconnects)
    assert codes.DISCONNECT_SHUTDOWN.reconnect and codes.DISCONNECT_SLOW.reconnect
    assert not codes.DISCONNECT_BAD_REQUEST.reconnect
    assert not codes.DISCONNECT_INVALID_TOKEN.reconnect
    assert codes.Disconnect(4000, "app").reconnect and not codes.Disconnect(4500, "x").reconnect
    for d in disconnects:
        assert len(d.reason.encode()) <= 123


def test_reply_errors_match_the_spec() -> None:
    table = {e.code: e for e in _catalog(codes.ReplyError) if e.message != "not found"}
    assert table[100].temporary and table[111].temporary
    assert [c for c in range(100, 114) if c not in table] == []
    assert not table[103].temporary


RULES = ChannelRules(
    ChannelConfig(
        without_namespace=ChannelOptions(allow_subscribe_for_client=True),
        namespaces=[NamespaceConfig(name="chat", presence=True)],
    ),
    PersonalChannelConfig(),
)


@pytest.mark.parametrize(
    ("channel", "namespace"),
    [("news", ""), ("chat:room", "chat"), ("$chat:room", "chat"), ("chat:a:b", "chat"), ("$x", "")],
)
def test_namespace_resolution(channel: str, namespace: str) -> None:
    assert RULES.namespace_of(channel) == namespace


def test_options_and_unknown_namespace() -> None:
    assert RULES.options("news").allow_subscribe_for_client
    assert RULES.options("chat:1").presence
    with pytest.raises(ReplyErrorException) as exc:
        RULES.options("other:1")
    assert exc.value.error.code == 102


def test_name_length_and_private_prefix() -> None:
    RULES.check_length("x" * 255)
    with pytest.raises(ReplyErrorException):
        RULES.check_length("x" * 256)
    assert RULES.is_private("$room") and not RULES.is_private("room")


def test_names_ascii_or_namespace_regex() -> None:
    opts = ChannelOptions()
    RULES.check_name("news", "news", opts)
    with pytest.raises(ReplyErrorException):
        RULES.check_name("новости", "новости", opts)
    regex = ChannelOptions(channel_regex="^[a-z]+$")
    rules = ChannelRules(ChannelConfig(without_namespace=regex), PersonalChannelConfig())
    rules.check_name("новости", "abc", regex)  # the regex replaces the ASCII rule
    with pytest.raises(ReplyErrorException):
        rules.check_name("x", "ABC", regex)


def test_user_limited_channels() -> None:
    opts = ChannelOptions(allow_user_limited_channels=True)
    assert RULES.is_user_limited("dialog#1,2", opts)
    assert not RULES.is_user_limited("dialog#1,2", ChannelOptions())
    assert RULES.user_allowed("dialog#1,2", "2")
    assert not RULES.user_allowed("dialog#1,2", "3")
    assert not RULES.user_allowed("dialog#1,2", "")
    assert RULES.user_allowed("a#b#7", "7")  # the last boundary counts


def test_personal_channel_names() -> None:
    assert RULES.personal_channel("42") == "#42"
    rules = ChannelRules(
        ChannelConfig(), PersonalChannelConfig(enabled=True, personal_channel_namespace="me")
    )
    assert rules.personal_channel("42") == "me:#42"
