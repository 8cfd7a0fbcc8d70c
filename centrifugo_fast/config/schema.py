"""The configuration tree, in Centrifugo v6 names, with Centrifugo's defaults.

Each section is a frozen msgspec Struct; decoding a user's file into `Config` validates
types and names the offending key in the error. Durations are Go-style strings ("25s").
"""

from __future__ import annotations

import msgspec


class Duration(float):
    """A duration in seconds, written in config files as a Go duration string ("25s")."""

    def __repr__(self) -> str:
        return f"Duration({float(self)!r})"


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    pass


class TLSConfig(_Section, frozen=True):
    enabled: bool = False
    cert_pem: str = ""
    key_pem: str = ""
    server_ca_pem: str = ""
    client_ca_pem: str = ""
    insecure_skip_verify: bool = False
    server_name: str = ""


class TokenConfig(_Section, frozen=True):
    hmac_secret_key: str = ""
    hmac_previous_secret_key: str = ""
    hmac_previous_secret_key_valid_until: int = 0
    rsa_public_key: str = ""
    ecdsa_public_key: str = ""
    jwks_public_endpoint: str = ""
    audience: str = ""
    audience_regex: str = ""
    issuer: str = ""
    issuer_regex: str = ""
    user_id_claim: str = ""


class SubscriptionTokenConfig(TokenConfig, frozen=True, kw_only=True):
    enabled: bool = False


class PersonalChannelConfig(_Section, frozen=True):
    enabled: bool = False
    personal_channel_namespace: str = ""
    single_connection: bool = False


class ProxyToggle(_Section, frozen=True):
    enabled: bool = False
    endpoint: str = ""
    timeout: Duration = Duration(1.0)


class ClientProxyConfig(_Section, frozen=True):
    connect: ProxyToggle = ProxyToggle()
    refresh: ProxyToggle = ProxyToggle()


class ClientConfig(_Section, frozen=True):
    token: TokenConfig = TokenConfig()
    subscription_token: SubscriptionTokenConfig = SubscriptionTokenConfig()
    allowed_origins: list[str] = []
    allow_anonymous_connect_without_token: bool = False
    disallow_anonymous_connection_tokens: bool = False
    insecure: bool = False
    insecure_skip_token_signature_verify: bool = False
    user_id_http_header: str = ""
    ping_interval: Duration = Duration(25.0)
    pong_timeout: Duration = Duration(8.0)
    expired_close_delay: Duration = Duration(25.0)
    expired_sub_close_delay: Duration = Duration(25.0)
    stale_close_delay: Duration = Duration(10.0)
    channel_limit: int = 128
    queue_max_size: int = 1048576
    user_connection_limit: int = 0
    connection_limit: int = 0
    connection_rate_limit: int = 0
    presence_update_interval: Duration = Duration(27.0)
    history_max_publication_limit: int = 300
    recovery_max_publication_limit: int = 300
    concurrency: int = 0
    connect_include_server_time: bool = False
    subscribe_to_user_personal_channel: PersonalChannelConfig = PersonalChannelConfig()
    proxy: ClientProxyConfig = ClientProxyConfig()


class ChannelOptions(_Section, frozen=True):
    """Options of one namespace (or of channels without a namespace); spec §4.6."""

    presence: bool = False
    join_leave: bool = False
    force_push_join_leave: bool = False
    history_size: int = 0
    history_ttl: Duration = Duration(0.0)
    history_meta_ttl: Duration = Duration(0.0)
    force_positioning: bool = False
    allow_positioning: bool = False
    force_recovery: bool = False
    allow_recovery: bool = False
    force_recovery_mode: str = ""
    auto_cache_recover: bool = False
    allow_subscribe_for_client: bool = False
    allow_subscribe_for_anonymous: bool = False
    allow_publish_for_subscriber: bool = False
    allow_publish_for_client: bool = False
    allow_publish_for_anonymous: bool = False
    allow_presence_for_subscriber: bool = False
    allow_presence_for_client: bool = False
    allow_presence_for_anonymous: bool = False
    allow_history_for_subscriber: bool = False
    allow_history_for_client: bool = False
    allow_history_for_anonymous: bool = False
    allow_user_limited_channels: bool = False
    channel_regex: str = ""
    publication_data_format: str = ""
    delta_publish: bool = False
    allowed_delta_types: list[str] = []
    allow_tags_filter: bool = False
    subscribe_proxy_enabled: bool = False
    subscribe_proxy_name: str = ""
    publish_proxy_enabled: bool = False
    publish_proxy_name: str = ""
    sub_refresh_proxy_enabled: bool = False
    sub_refresh_proxy_name: str = ""
    subscribe_stream_proxy_enabled: bool = False
    subscribe_stream_proxy_name: str = ""
    subscribe_stream_proxy_bidirectional: bool = False
    subscription_type: str = ""


class NamespaceConfig(ChannelOptions, frozen=True, kw_only=True):
    name: str


class ChannelConfig(_Section, frozen=True):
    without_namespace: ChannelOptions = ChannelOptions()
    namespaces: list[NamespaceConfig] = []
    history_meta_ttl: Duration = Duration(720 * 3600.0)
    max_length: int = 255
    private_prefix: str = "$"
    namespace_boundary: str = ":"
    user_boundary: str = "#"
    user_separator: str = ","
    publication_data_format: str = ""


class TLSAutocertConfig(_Section, frozen=True):
    """http_server.tls_autocert: certificates from an ACME CA such as Let's Encrypt."""

    enabled: bool = False
    host_whitelist: list[str] = []
    cache_dir: str = ""
    email: str = ""
    server_name: str = ""
    http: bool = False
    http_addr: str = ":80"
    #: Our options (not in Centrifugo, which always uses Let's Encrypt and renews 30 days
    #: before expiry): the ACME directory, the CA bundle to trust for it (PEM, base64 or
    #: path; e.g. a test CA), and how long before expiry a certificate is renewed.
    directory_url: str = "https://acme-v02.api.letsencrypt.org/directory"
    directory_ca_pem: str = ""
    renew_before: Duration = Duration(720 * 3600.0)


class HttpServerConfig(_Section, frozen=True):
    address: str = ""
    port: int = 8000
    internal_address: str = ""
    internal_port: int = 0
    tls: TLSConfig = TLSConfig()
    tls_autocert: TLSAutocertConfig = TLSAutocertConfig()
    tls_external: bool = False
    internal_tls: TLSConfig = TLSConfig()


class HttpApiConfig(_Section, frozen=True):
    key: str = ""
    insecure: bool = False
    disabled: bool = False
    external: bool = False
    handler_prefix: str = "/api"
    error_mode: str = ""


class WebSocketConfig(_Section, frozen=True):
    disabled: bool = False
    handler_prefix: str = "/connection/websocket"
    message_size_limit: int = 65536
    write_timeout: Duration = Duration(1.0)
    read_buffer_size: int = 0
    write_buffer_size: int = 0
    use_write_buffer_pool: bool = False
    compression: bool = False
    compression_level: int = 1
    compression_min_size: int = 0


class ToggleConfig(_Section, frozen=True):
    enabled: bool = False
    handler_prefix: str = ""


class HealthConfig(_Section, frozen=True):
    enabled: bool = False
    handler_prefix: str = "/health"


class PrometheusConfig(_Section, frozen=True):
    enabled: bool = False
    handler_prefix: str = "/metrics"
    instrument_http_handlers: bool = False
    recovered_publications_histogram: bool = False
    native_histograms: bool = False


class LogConfig(_Section, frozen=True):
    level: str = "info"
    file: str = ""
    #: Our option (Centrifugo has none: it writes JSON whenever the output is not a
    #: terminal): "text" lines or "json" objects, one per line.
    format: str = "text"


class NodeConfig(_Section, frozen=True):
    name: str = ""
    info_metrics_aggregate_interval: Duration = Duration(60.0)


class RedisConfig(_Section, frozen=True):
    """engine.redis: one or more Redis shards, Sentinel or Cluster (spec engine.md §4)."""

    address: list[str] = msgspec.field(default_factory=lambda: ["redis://127.0.0.1:6379"])
    prefix: str = "centrifugo"
    connect_timeout: Duration = Duration(1.0)
    io_timeout: Duration = Duration(4.0)
    db: int = 0
    user: str = ""
    password: str = ""
    client_name: str = ""
    tls: TLSConfig = TLSConfig()
    sentinel_address: list[str] = []
    sentinel_master_name: str = ""
    sentinel_user: str = ""
    sentinel_password: str = ""
    sentinel_client_name: str = ""
    sentinel_tls: TLSConfig = TLSConfig()
    cluster_address: list[str] = []
    history_use_lists: bool = False
    presence_ttl: Duration = Duration(60.0)
    presence_hash_field_ttl: bool = False
    presence_user_mapping: bool = False


class EngineConfig(_Section, frozen=True):
    type: str = "memory"
    redis: RedisConfig = RedisConfig()


class AdminConfig(_Section, frozen=True):
    """admin: the built-in web interface (spec/server-api.md §7)."""

    enabled: bool = False
    password: str = ""
    secret: str = ""
    insecure: bool = False
    handler_prefix: str = ""
    external: bool = False
    web_path: str = ""
    web_proxy_address: str = ""


class ShutdownConfig(_Section, frozen=True):
    timeout: Duration = Duration(30.0)


class Config(_Section, frozen=True):
    """The whole configuration of one node."""

    http_server: HttpServerConfig = HttpServerConfig()
    http_api: HttpApiConfig = HttpApiConfig()
    websocket: WebSocketConfig = WebSocketConfig()
    client: ClientConfig = ClientConfig()
    channel: ChannelConfig = ChannelConfig()
    log: LogConfig = LogConfig()
    node: NodeConfig = NodeConfig()
    engine: EngineConfig = EngineConfig()
    admin: AdminConfig = AdminConfig()
    health: HealthConfig = HealthConfig()
    prometheus: PrometheusConfig = PrometheusConfig()
    sse: ToggleConfig = ToggleConfig()
    http_stream: ToggleConfig = ToggleConfig()
    uni_websocket: ToggleConfig = ToggleConfig()
    uni_sse: ToggleConfig = ToggleConfig()
    uni_http_stream: ToggleConfig = ToggleConfig()
    #: Legacy SockJS endpoint (not in Centrifugo v6, which dropped SockJS; off by default).
    sockjs: ToggleConfig = ToggleConfig()
    shutdown: ShutdownConfig = ShutdownConfig()
    pid_file: str = ""
