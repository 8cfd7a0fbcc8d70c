"""Code catalogs and channel namespace rules."""

from __future__ import annotations

from typing import TypeVar

import pytest

from centrifugo_fast import codes
from centrifugo_fast.config.schema import ChannelConfig, ChannelOptions, NamespaceConfig
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
    )
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
    RULES.check_client_name("x" * 255)
    with pytest.raises(ReplyErrorException):
        RULES.check_client_name("x" * 256)
    assert RULES.is_private("$room") and not RULES.is_private("room")
