"""Centrifugo v5 flat option names and their v6 places (users upgrading old configs).

A v5 key is accepted, moved to its v6 path and reported with a deprecation warning naming
the v6 key. Top-level channel options of v5 (`presence`, `history_size`, ...) become
`channel.without_namespace.<option>`.
"""

from __future__ import annotations

from typing import Any

from .schema import ChannelOptions

V5_TO_V6: dict[str, str] = {
    "port": "http_server.port",
    "address": "http_server.address",
    "internal_port": "http_server.internal_port",
    "internal_address": "http_server.internal_address",
    "tls_external": "http_server.tls_external",
    "tls": "http_server.tls.enabled",
    "tls_cert": "http_server.tls.cert_pem",
    "tls_key": "http_server.tls.key_pem",
    "tls_autocert": "http_server.tls_autocert.enabled",
    "tls_autocert_host_whitelist": "http_server.tls_autocert.host_whitelist",
    "tls_autocert_cache_dir": "http_server.tls_autocert.cache_dir",
    "tls_autocert_email": "http_server.tls_autocert.email",
    "tls_autocert_server_name": "http_server.tls_autocert.server_name",
    "tls_autocert_http": "http_server.tls_autocert.http",
    "tls_autocert_http_addr": "http_server.tls_autocert.http_addr",
    "api_key": "http_api.key",
    "api_insecure": "http_api.insecure",
    "api_disable": "http_api.disabled",
    "api_external": "http_api.external",
    "api_handler_prefix": "http_api.handler_prefix",
    "api_error_mode": "http_api.error_mode",
    "websocket_handler_prefix": "websocket.handler_prefix",
    "websocket_disable": "websocket.disabled",
    "websocket_message_size_limit": "websocket.message_size_limit",
    "websocket_write_timeout": "websocket.write_timeout",
    "websocket_read_buffer_size": "websocket.read_buffer_size",
    "websocket_write_buffer_size": "websocket.write_buffer_size",
    "websocket_use_write_buffer_pool": "websocket.use_write_buffer_pool",
    "websocket_compression": "websocket.compression",
    "websocket_compression_level": "websocket.compression_level",
    "websocket_compression_min_size": "websocket.compression_min_size",
    "sse": "sse.enabled",
    "http_stream": "http_stream.enabled",
    "uni_websocket": "uni_websocket.enabled",
    "uni_sse": "uni_sse.enabled",
    "uni_http_stream": "uni_http_stream.enabled",
    "admin": "admin.enabled",
    "admin_password": "admin.password",
    "admin_secret": "admin.secret",
    "admin_insecure": "admin.insecure",
    "admin_handler_prefix": "admin.handler_prefix",
    "admin_external": "admin.external",
    "admin_web_path": "admin.web_path",
    "admin_web_proxy_address": "admin.web_proxy_address",
    "prometheus": "prometheus.enabled",
    "prometheus_handler_prefix": "prometheus.handler_prefix",
    "health": "health.enabled",
    "health_handler_prefix": "health.handler_prefix",
    "log_level": "log.level",
    "log_file": "log.file",
    "name": "node.name",
    "node_info_metrics_aggregate_interval": "node.info_metrics_aggregate_interval",
    "shutdown_timeout": "shutdown.timeout",
    "token_hmac_secret_key": "client.token.hmac_secret_key",
    "token_rsa_public_key": "client.token.rsa_public_key",
    "token_ecdsa_public_key": "client.token.ecdsa_public_key",
    "token_jwks_public_endpoint": "client.token.jwks_public_endpoint",
    "token_audience": "client.token.audience",
    "token_audience_regex": "client.token.audience_regex",
    "token_issuer": "client.token.issuer",
    "token_issuer_regex": "client.token.issuer_regex",
    "token_user_id_claim": "client.token.user_id_claim",
    "separate_subscription_token_config": "client.subscription_token.enabled",
    "subscription_token_hmac_secret_key": "client.subscription_token.hmac_secret_key",
    "subscription_token_rsa_public_key": "client.subscription_token.rsa_public_key",
    "subscription_token_ecdsa_public_key": "client.subscription_token.ecdsa_public_key",
    "subscription_token_jwks_public_endpoint": "client.subscription_token.jwks_public_endpoint",
    "subscription_token_audience": "client.subscription_token.audience",
    "subscription_token_issuer": "client.subscription_token.issuer",
    "subscription_token_user_id_claim": "client.subscription_token.user_id_claim",
    "allowed_origins": "client.allowed_origins",
    "allow_anonymous_connect_without_token": "client.allow_anonymous_connect_without_token",
    "disallow_anonymous_connection_tokens": "client.disallow_anonymous_connection_tokens",
    "client_insecure": "client.insecure",
    "client_insecure_skip_token_signature_verify": ("client.insecure_skip_token_signature_verify"),
    "client_user_id_http_header": "client.user_id_http_header",
    "ping_interval": "client.ping_interval",
    "pong_timeout": "client.pong_timeout",
    "client_expired_close_delay": "client.expired_close_delay",
    "client_expired_sub_close_delay": "client.expired_sub_close_delay",
    "client_stale_close_delay": "client.stale_close_delay",
    "client_channel_limit": "client.channel_limit",
    "client_queue_max_size": "client.queue_max_size",
    "client_user_connection_limit": "client.user_connection_limit",
    "client_connection_limit": "client.connection_limit",
    "client_connection_rate_limit": "client.connection_rate_limit",
    "client_presence_update_interval": "client.presence_update_interval",
    "client_history_max_publication_limit": "client.history_max_publication_limit",
    "client_recovery_max_publication_limit": "client.recovery_max_publication_limit",
    "client_concurrency": "client.concurrency",
    "client_connect_include_server_time": "client.connect_include_server_time",
    "user_subscribe_to_personal": "client.subscribe_to_user_personal_channel.enabled",
    "user_personal_channel_namespace": (
        "client.subscribe_to_user_personal_channel.personal_channel_namespace"
    ),
    "user_personal_single_connection": (
        "client.subscribe_to_user_personal_channel.single_connection"
    ),
    "namespaces": "channel.namespaces",
    "global_history_meta_ttl": "channel.history_meta_ttl",
    "channel_max_length": "channel.max_length",
    "channel_private_prefix": "channel.private_prefix",
    "channel_namespace_boundary": "channel.namespace_boundary",
    "channel_user_boundary": "channel.user_boundary",
    "channel_user_separator": "channel.user_separator",
    "engine": "engine.type",
    "redis_address": "engine.redis.address",
    "redis_prefix": "engine.redis.prefix",
}

_CHANNEL_OPTIONS = frozenset(ChannelOptions.__struct_fields__)


def v6_path(key: str) -> str | None:
    """The v6 dotted path of a v5 top-level key, or None if it is not a v5 key."""
    if key in V5_TO_V6:
        return V5_TO_V6[key]
    if key in _CHANNEL_OPTIONS:
        return f"channel.without_namespace.{key}"
    return None


def upgrade(data: dict[str, Any], v6_sections: frozenset[str]) -> list[str]:
    """Move v5 keys of `data` (in place) to their v6 paths; return deprecation warnings."""
    warnings = []
    # A v5 key may share its name with a v6 section (`prometheus: true`, `engine: "redis"`):
    # a value that is not an object is the v5 option.
    for key in [
        k for k in data if k not in v6_sections or (k in V5_TO_V6 and not isinstance(data[k], dict))
    ]:
        path = v6_path(key)
        if path is None:
            continue
        value = data.pop(key)
        if key == "tls_autocert_host_whitelist" and isinstance(value, str):
            # v5 wrote the whitelist as one comma-separated string.
            value = [host.strip() for host in value.split(",") if host.strip()]
        node = data
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            if parts[-1] not in node:
                node[parts[-1]] = value
                warnings.append(f"config key {key} is a Centrifugo v5 name, deprecated: use {path}")
                continue
        warnings.append(f"config key {key} (v5) ignored: {path} is also set")
    return warnings
