"""Redis addresses of `engine.redis` turned into shards (engine.md §4, §10).

Accepted forms, each one shard:
  * `host:port`, `redis://[user:password@]host:port[/db][?options]`, `unix:///path.sock[?db=N]`;
  * `redis+sentinel://[user:password@]host:port[/db]?sentinel_master_name=NAME[&addr=host:port...]`
    (Sentinel seeds; `sentinel_user`, `sentinel_password` options);
  * `redis+cluster://host:port[?addr=host:port...]`.
Options in the query: `addr`, `connect_timeout`, `io_timeout` (Go durations), `db`,
`sentinel_master_name`, `sentinel_user`, `sentinel_password`. `engine.redis.address` may list
several (client-side sharding). The legacy keys `sentinel_address` and `cluster_address` list
shards too, each entry a comma-separated list of seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from ...config.schema import RedisConfig

STANDALONE = "standalone"
SENTINEL = "sentinel"
CLUSTER = "cluster"
UNIX = "unix"

_SCHEMES = {
    "redis": STANDALONE,
    "tcp": STANDALONE,
    "unix": UNIX,
    "redis+sentinel": SENTINEL,
    "redis+cluster": CLUSTER,
}
_TLS_SCHEMES = ("rediss", "rediss+sentinel", "rediss+cluster")
_KNOWN_OPTIONS = frozenset(
    {
        "addr",
        "db",
        "connect_timeout",
        "io_timeout",
        "sentinel_master_name",
        "sentinel_user",
        "sentinel_password",
        "force_resp2",
        "client_name",
    }
)


class AddressError(ValueError):
    """An address that cannot be used."""


@dataclass
class ShardSpec:
    """How to reach one shard: a Redis server, a Sentinel-managed master or a Cluster."""

    kind: str
    #: Server, Sentinel or Cluster seed addresses.
    hosts: list[tuple[str, int]] = field(default_factory=list)
    unix_path: str = ""
    db: int = 0
    user: str = ""
    password: str = ""
    client_name: str = ""
    master_name: str = ""
    sentinel_user: str = ""
    sentinel_password: str = ""
    connect_timeout: float = 1.0
    io_timeout: float = 4.0

    def describe(self) -> str:
        """For logs: where the shard is, without credentials."""
        where = self.unix_path or ",".join(f"{h}:{p}" for h, p in self.hosts)
        if self.kind == SENTINEL:
            return f"sentinel {self.master_name}@{where}"
        return f"{self.kind} {where}"


def _host_port(text: str, default_port: int = 6379) -> tuple[str, int]:
    text = text.strip()
    if not text:
        raise AddressError("empty host")
    if text.startswith("["):  # [ipv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not port_text:
        return host, default_port
    try:
        port = int(port_text)
    except ValueError as exc:
        raise AddressError(f"bad port in {text!r}") from exc
    if not 0 < port < 65536:
        raise AddressError(f"bad port in {text!r}")
    return host or "127.0.0.1", port


def _duration(text: str, name: str) -> float:
    from ...config.loader import parse_duration

    try:
        value = float(parse_duration(text))
    except ValueError as exc:
        raise AddressError(f"{name}: {exc}") from exc
    if value <= 0:
        raise AddressError(f"{name} must be positive")
    return value


def _base(config: RedisConfig, kind: str) -> ShardSpec:
    return ShardSpec(
        kind=kind,
        db=config.db,
        user=config.user,
        password=config.password,
        client_name=config.client_name,
        master_name=config.sentinel_master_name,
        sentinel_user=config.sentinel_user,
        sentinel_password=config.sentinel_password,
        connect_timeout=float(config.connect_timeout),
        io_timeout=float(config.io_timeout),
    )


def parse_address(text: str, config: RedisConfig) -> ShardSpec:
    """One entry of `engine.redis.address`."""
    text = text.strip()
    if not text:
        raise AddressError("empty address")
    if "://" not in text:
        spec = _base(config, STANDALONE)
        spec.hosts = [_host_port(text)]
        return spec
    url = urlsplit(text)
    scheme = url.scheme.lower()
    if scheme in _TLS_SCHEMES:
        raise AddressError(f"{scheme}:// (TLS) is not supported yet")
    kind = _SCHEMES.get(scheme)
    if kind is None:
        raise AddressError(f"unknown scheme {scheme}://")
    spec = _base(config, kind)
    query = parse_qs(url.query, keep_blank_values=True)
    for name in query:
        if name not in _KNOWN_OPTIONS and not name.endswith("_enabled"):
            raise AddressError(f"unknown option {name}")
    for name in ("tls_enabled", "sentinel_tls_enabled", "replica_client_enabled"):
        if query.get(name, ["false"])[-1].lower() in ("1", "true", "yes"):
            raise AddressError(f"{name} is not supported yet")

    def last(name: str) -> str:
        return query.get(name, [""])[-1]

    if url.username:
        spec.user = unquote(url.username)
    if url.password:
        spec.password = unquote(url.password)
    if kind == UNIX:
        spec.unix_path = url.path
        if not spec.unix_path:
            raise AddressError("unix:// needs a socket path")
    else:
        netloc = url.netloc.rpartition("@")[2]
        if netloc:
            spec.hosts.append(_host_port(netloc, 26379 if kind == SENTINEL else 6379))
        path = url.path.strip("/")
        if path:
            try:
                spec.db = int(path)
            except ValueError as exc:
                raise AddressError(f"bad database number {path!r}") from exc
    spec.hosts += [_host_port(a) for value in query.get("addr", []) for a in value.split(",")]
    if not spec.hosts and kind != UNIX:
        raise AddressError("no host")
    if last("db"):
        try:
            spec.db = int(last("db"))
        except ValueError as exc:
            raise AddressError(f"bad database number {last('db')!r}") from exc
    if last("connect_timeout"):
        spec.connect_timeout = _duration(last("connect_timeout"), "connect_timeout")
    if last("io_timeout"):
        spec.io_timeout = _duration(last("io_timeout"), "io_timeout")
    if last("client_name"):
        spec.client_name = last("client_name")
    if kind == SENTINEL:
        spec.master_name = last("sentinel_master_name") or spec.master_name
        spec.sentinel_user = last("sentinel_user") or spec.sentinel_user
        spec.sentinel_password = last("sentinel_password") or spec.sentinel_password
        if not spec.master_name:
            raise AddressError("redis+sentinel:// needs ?sentinel_master_name=")
    if spec.db < 0:
        raise AddressError("database number must not be negative")
    if kind == CLUSTER and spec.db != 0:
        raise AddressError("Redis Cluster has only database 0")
    return spec


def _seeds(entry: str, default_port: int) -> list[tuple[str, int]]:
    hosts = [_host_port(part, default_port) for part in entry.split(",") if part.strip()]
    if not hosts:
        raise AddressError("empty address")
    return hosts


def shard_specs(config: RedisConfig) -> list[ShardSpec]:
    """Every shard of the configuration, in order; raises AddressError with the key name."""
    if config.cluster_address:
        specs = []
        for i, entry in enumerate(config.cluster_address):
            spec = _base(config, CLUSTER)
            try:
                spec.hosts = _seeds(entry, 6379)
            except AddressError as exc:
                raise AddressError(f"engine.redis.cluster_address[{i}]: {exc}") from exc
            specs.append(spec)
        return specs
    if config.sentinel_address:
        if not config.sentinel_master_name:
            raise AddressError("engine.redis.sentinel_address needs sentinel_master_name")
        specs = []
        for i, entry in enumerate(config.sentinel_address):
            spec = _base(config, SENTINEL)
            try:
                spec.hosts = _seeds(entry, 26379)
            except AddressError as exc:
                raise AddressError(f"engine.redis.sentinel_address[{i}]: {exc}") from exc
            specs.append(spec)
        return specs
    if not config.address:
        raise AddressError("engine.redis.address is empty")
    specs = []
    for i, entry in enumerate(config.address):
        try:
            specs.append(parse_address(entry, config))
        except AddressError as exc:
            raise AddressError(f"engine.redis.address[{i}]: {exc}") from exc
    return specs
