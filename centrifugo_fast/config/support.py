"""Which configuration options this server implements so far.

Two lists, both about options set to a non-zero value:
  * NOT_YET: planned by an open issue. design.md §10: the server starts and warns, naming
    the option. Remove a path from this list in the change that implements it.
  * REFUSED: outside this project's scope (proxies, PRO-style map subscriptions, tags
    filters). Silently ignoring them would change behaviour a Centrifugo user relies on, so
    the loader stops with a message naming the option (issue 3: "rejected at startup").
"""

from __future__ import annotations

import re

_INDEX = re.compile(r"\[\d+\]")

# Channel options are checked under both `channel.without_namespace.X` and `channel.namespaces[].X`.
NOT_YET_CHANNEL_OPTIONS: frozenset[str] = frozenset()

REFUSED_CHANNEL_OPTIONS = frozenset(
    {
        "auto_cache_recover",
        "allow_tags_filter",
        "subscribe_proxy_enabled",
        "subscribe_proxy_name",
        "publish_proxy_enabled",
        "publish_proxy_name",
        "sub_refresh_proxy_enabled",
        "sub_refresh_proxy_name",
        "subscribe_stream_proxy_enabled",
        "subscribe_stream_proxy_name",
        "subscribe_stream_proxy_bidirectional",
    }
)

#: Paths, or whole sections (every option under `section.`), planned but not built yet.
NOT_YET = frozenset(
    {
        "websocket.write_timeout",
        "websocket.read_buffer_size",
        "websocket.write_buffer_size",
        "websocket.use_write_buffer_pool",
        "client.concurrency",
        "node.info_metrics_aggregate_interval",
        "engine.redis.tls",
        "engine.redis.sentinel_tls",
        "engine.redis.sentinel_client_name",
        "engine.redis.history_use_lists",
        "engine.redis.presence_hash_field_ttl",
        "admin.web_path",
        "admin.web_proxy_address",
        "prometheus.instrument_http_handlers",
        "prometheus.recovered_publications_histogram",
        "prometheus.native_histograms",
    }
)

#: Paths or sections outside this project's scope.
REFUSED = frozenset({"client.proxy"})


def listed(path: str, entries: frozenset[str]) -> bool:
    """True when `path` is an entry or lies in a section that is an entry."""
    if path in entries:
        return True
    parts = path.split(".")
    return any(".".join(parts[:i]) in entries for i in range(1, len(parts)))


_OFF_VALUES: tuple[object, ...] = (None, False, 0, 0.0, "", "0", "0s", [], {})


def _is_off(value: object) -> bool:
    return any(value == off and type(value) is type(off) for off in _OFF_VALUES)


def _split(path: str) -> tuple[bool, str]:
    """(is a channel option, normalised path or option name)."""
    path = _INDEX.sub("[]", path)
    for prefix in ("channel.without_namespace.", "channel.namespaces[]."):
        if path.startswith(prefix):
            return True, path.removeprefix(prefix)
    return False, path


def is_supported(path: str, value: object) -> bool:
    """False when `path` names an option planned but not built yet and `value` turns it on."""
    if _is_off(value):
        return True
    channel_option, name = _split(path)
    if channel_option:
        return name not in NOT_YET_CHANNEL_OPTIONS
    return not listed(name, NOT_YET)


def is_refused(path: str, value: object) -> bool:
    """True when `path` names an option outside this server's scope and `value` turns it on."""
    if _is_off(value):
        return False
    channel_option, name = _split(path)
    if channel_option:
        if name == "subscription_type":
            return value != "stream"
        return name in REFUSED_CHANNEL_OPTIONS
    return listed(name, REFUSED)
