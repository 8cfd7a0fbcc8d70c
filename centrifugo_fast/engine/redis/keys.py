"""Key and channel names of the Redis engine, and how channels map to shards (engine.md §2.2, §4.1).

Names follow Centrifugo's layout so the data in Redis reads the same: with prefix `P` and
channel `C` the PUB/SUB channel is `P.client.C`, the history stream `P.stream.C` and so on.
In Redis Cluster every key of a channel carries the hash tag `{C}`, which keeps each Lua call
within one slot.
"""

from __future__ import annotations

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1
_JUMP_MULTIPLIER = 2862933555777941757


def fnv1a_64(data: bytes) -> int:
    """64-bit FNV-1a hash."""
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & _MASK64
    return value


def jump_hash(key: int, buckets: int) -> int:
    """Jump consistent hash (Lamping & Veach) of a 64-bit key over `buckets` buckets."""
    bucket, candidate = -1, 0
    while candidate < buckets:
        bucket = candidate
        key = (key * _JUMP_MULTIPLIER + 1) & _MASK64
        candidate = int(float(bucket + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return bucket


def shard_index(channel: str, shards: int) -> int:
    """The shard that holds everything about `channel` (0 when there is one shard)."""
    if shards <= 1:
        return 0
    return jump_hash(fnv1a_64(channel.encode()), shards)


class KeyScheme:
    """Builds every key and PUB/SUB channel name for one prefix, standalone or Cluster."""

    __slots__ = ("prefix", "cluster", "client_prefix", "control", "_client_prefix_len")

    def __init__(self, prefix: str, cluster: bool) -> None:
        self.prefix = prefix
        self.cluster = cluster
        self.client_prefix = f"{prefix}.client."
        self._client_prefix_len = len(self.client_prefix.encode())
        #: Control messages for every node.
        self.control = f"{prefix}.control"

    def _part(self, channel: str) -> str:
        return "{" + channel + "}" if self.cluster else channel

    def pubsub(self, channel: str) -> str:
        """The PUB/SUB channel carrying `channel`'s publications and join/leave events."""
        return self.client_prefix + self._part(channel)

    def channel_of(self, name: bytes) -> str | None:
        """The channel behind a PUB/SUB channel name, None when the name is not one of ours."""
        if not name.startswith(self.client_prefix.encode()):
            return None
        rest = name[self._client_prefix_len :]
        if self.cluster:
            if len(rest) < 2 or rest[:1] != b"{" or rest[-1:] != b"}":
                return None
            rest = rest[1:-1]
        try:
            return rest.decode()
        except UnicodeDecodeError:
            return None

    def stream(self, channel: str) -> str:
        return f"{self.prefix}.stream.{self._part(channel)}"

    def stream_meta(self, channel: str) -> str:
        return f"{self.prefix}.stream.meta.{self._part(channel)}"

    def result(self, channel: str, idempotency_key: str) -> str:
        return f"{self.prefix}.result.{self._part(channel)}.{idempotency_key}"

    def presence_data(self, channel: str) -> str:
        return f"{self.prefix}.presence.data.{self._part(channel)}"

    def presence_expire(self, channel: str) -> str:
        return f"{self.prefix}.presence.expire.{self._part(channel)}"

    def presence_user_expire(self, channel: str) -> str:
        return f"{self.prefix}.presence.user.expire.{self._part(channel)}"

    def presence_user_clients(self, channel: str) -> str:
        return f"{self.prefix}.presence.user.clients.{self._part(channel)}"

    def node(self, node_id: str) -> str:
        """Control messages for one node."""
        return f"{self.prefix}.node.{node_id}"

    def service(self, index: int = 0) -> str:
        """The PUB/SUB connection's own channel, used by the liveness probe."""
        return f"{self.prefix}.shard.{index}"
