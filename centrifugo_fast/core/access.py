"""Who may do what in a channel (spec/server-api.md §4.7), and per-subscription options.

These are pure decisions over namespace options and the connection's identity; the Client
gathers the facts (user, subscribed, token) and turns a refusal into the documented code.
Server API calls never come here: they bypass permission checks.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..config.schema import ChannelOptions


class SubscriptionOptions(NamedTuple):
    """What one subscription does besides receiving publications."""

    #: Keep a presence entry for this subscriber.
    presence: bool = False
    #: Emit join/leave events when this subscriber comes and goes.
    join_leave: bool = False
    #: Deliver join/leave pushes of the channel to this subscriber.
    push_join_leave: bool = False
    #: Track the stream position and detect gaps.
    positioning: bool = False
    #: Allow recovery of missed publications on resubscribe.
    recovery: bool = False
    #: "stream" or "cache".
    recovery_mode: str = "stream"
    #: Publications go out as fossil deltas when smaller (client asked, namespace allows).
    delta: bool = False


#: Token/API override keys and the option each replaces.
_OVERRIDES = {
    "presence": "presence",
    "join_leave": "join_leave",
    "force_push_join_leave": "push_join_leave",
    "force_positioning": "positioning",
    "force_recovery": "recovery",
}


def namespace_defaults(opts: ChannelOptions) -> SubscriptionOptions:
    """The options every subscription of a namespace starts with."""
    return SubscriptionOptions(
        presence=opts.presence,
        join_leave=opts.join_leave,
        push_join_leave=opts.force_push_join_leave,
        positioning=opts.force_positioning,
        recovery=opts.force_recovery,
        recovery_mode=opts.force_recovery_mode or "stream",
    )


def with_overrides(base: SubscriptionOptions, override: dict[str, bool]) -> SubscriptionOptions:
    """Apply a token's or API call's `override` ({"presence": true, ...})."""
    changes: dict[str, Any] = {_OVERRIDES[k]: v for k, v in override.items() if k in _OVERRIDES}
    return base._replace(**changes) if changes else base


def _anonymous_ok(user: str, for_anonymous: bool) -> bool:
    return bool(user) or for_anonymous


def may_subscribe_by_namespace(opts: ChannelOptions, user: str) -> bool:
    """allow_subscribe_for_client (+ allow_subscribe_for_anonymous for anonymous users)."""
    return opts.allow_subscribe_for_client and _anonymous_ok(
        user, opts.allow_subscribe_for_anonymous
    )


def may_publish(opts: ChannelOptions, user: str, subscribed: bool, insecure: bool) -> bool:
    """Client publish permission."""
    anonymous_ok = _anonymous_ok(user, opts.allow_publish_for_anonymous)
    return (
        (opts.allow_publish_for_client and anonymous_ok)
        or (opts.allow_publish_for_subscriber and subscribed and anonymous_ok)
        or insecure
    )


def may_see_presence(opts: ChannelOptions, user: str, subscribed: bool, insecure: bool) -> bool:
    """Client presence / presence_stats permission (also gates join/leave opt-in)."""
    anonymous_ok = _anonymous_ok(user, opts.allow_presence_for_anonymous)
    return (
        (opts.allow_presence_for_client and anonymous_ok)
        or (opts.allow_presence_for_subscriber and subscribed and anonymous_ok)
        or insecure
    )


def may_see_history(opts: ChannelOptions, user: str, subscribed: bool, insecure: bool) -> bool:
    """Client history permission (also gates positioning/recovery opt-in)."""
    anonymous_ok = _anonymous_ok(user, opts.allow_history_for_anonymous)
    return (
        (opts.allow_history_for_client and anonymous_ok)
        or (opts.allow_history_for_subscriber and subscribed and anonymous_ok)
        or insecure
    )


def has_history(opts: ChannelOptions) -> bool:
    """History is on only when both size and TTL are set."""
    return opts.history_size > 0 and opts.history_ttl > 0
