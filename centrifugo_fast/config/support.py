"""Which configuration options this server implements so far.

design.md §10: an option that is not built yet still lets the server start, but the loader
warns naming it. Options listed here as unsupported warn only when set to a non-zero value.
Remove a path from this list in the change that implements it.
"""

from __future__ import annotations

import re

_INDEX = re.compile(r"\[\d+\]")

# Channel options are checked under both `channel.without_namespace.X` and `channel.namespaces[].X`.
UNSUPPORTED_CHANNEL_OPTIONS = frozenset(
    {
        "presence",
        "join_leave",
        "force_push_join_leave",
        "history_size",
        "history_ttl",
        "history_meta_ttl",
        "force_positioning",
        "allow_positioning",
        "force_recovery",
        "allow_recovery",
        "force_recovery_mode",
        "auto_cache_recover",
        "allow_presence_for_subscriber",
        "allow_presence_for_client",
        "allow_presence_for_anonymous",
        "allow_history_for_subscriber",
        "allow_history_for_client",
        "allow_history_for_anonymous",
        "allow_user_limited_channels",
        "channel_regex",
        "delta_publish",
        "allowed_delta_types",
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
        "subscription_type",
    }
)

UNSUPPORTED = frozenset(
    {
        "http_server.internal_address",
        "http_server.internal_port",
        "http_server.tls.enabled",
        "http_server.tls.cert_pem",
        "http_server.tls.key_pem",
        "http_server.tls.server_ca_pem",
        "http_server.tls.client_ca_pem",
        "http_server.tls_external",
        "http_server.internal_tls.enabled",
        "http_api.external",
        "websocket.write_timeout",
        "websocket.read_buffer_size",
        "websocket.write_buffer_size",
        "websocket.use_write_buffer_pool",
        "websocket.compression",
        "websocket.compression_level",
        "websocket.compression_min_size",
        "client.token.hmac_previous_secret_key",
        "client.token.hmac_previous_secret_key_valid_until",
        "client.token.rsa_public_key",
        "client.token.ecdsa_public_key",
        "client.token.jwks_public_endpoint",
        "client.token.audience",
        "client.token.audience_regex",
        "client.token.issuer",
        "client.token.issuer_regex",
        "client.token.user_id_claim",
        "client.subscription_token.enabled",
        "client.insecure_skip_token_signature_verify",
        "client.user_id_http_header",
        "client.expired_sub_close_delay",
        "client.user_connection_limit",
        "client.connection_limit",
        "client.connection_rate_limit",
        "client.presence_update_interval",
        "client.history_max_publication_limit",
        "client.recovery_max_publication_limit",
        "client.concurrency",
        "client.connect_include_server_time",
        "client.subscribe_to_user_personal_channel.enabled",
        "client.proxy.connect.enabled",
        "client.proxy.refresh.enabled",
        "channel.user_boundary",
        "channel.user_separator",
        "node.info_metrics_aggregate_interval",
        "admin.enabled",
        "health.enabled",
        "prometheus.enabled",
        "sse.enabled",
        "http_stream.enabled",
        "uni_websocket.enabled",
        "uni_sse.enabled",
        "uni_http_stream.enabled",
    }
)

_OFF_VALUES: tuple[object, ...] = (None, False, 0, 0.0, "", "0", "0s", [], {})


def is_supported(path: str, value: object) -> bool:
    """False when `path` names an option not implemented yet and `value` turns it on."""
    if any(value == off and type(value) is type(off) for off in _OFF_VALUES):
        return True
    path = _INDEX.sub("[]", path)
    for prefix in ("channel.without_namespace.", "channel.namespaces[]."):
        if path.startswith(prefix):
            return path.removeprefix(prefix) not in UNSUPPORTED_CHANNEL_OPTIONS
    return path not in UNSUPPORTED
