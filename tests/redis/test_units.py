"""Pieces of the Redis engine that need no Redis: names, hashing, framing, addresses."""

from __future__ import annotations

import pytest

from centrifugo_fast.config.loader import load_config
from centrifugo_fast.config.schema import RedisConfig
from centrifugo_fast.engine.redis.address import (
    CLUSTER,
    SENTINEL,
    STANDALONE,
    UNIX,
    AddressError,
    parse_address,
    shard_specs,
)
from centrifugo_fast.engine.redis.keys import KeyScheme
from centrifugo_fast.engine.redis.wire import (
    JOIN,
    LEAVE,
    PUBLICATION,
    WireError,
    encode_publication,
    join_frame,
    leave_frame,
    parse_message,
)
from centrifugo_fast.engine.types import ClientInfo, Publication
from centrifugo_fast.errors import ConfigError


def test_key_names() -> None:
    plain = KeyScheme("centrifugo", cluster=False)
    assert plain.pubsub("news") == "centrifugo.client.news"
    assert plain.stream("news") == "centrifugo.stream.news"
    assert plain.stream_meta("news") == "centrifugo.stream.meta.news"
    assert plain.result("news", "k1") == "centrifugo.result.news.k1"
    assert plain.presence_data("a:b") == "centrifugo.presence.data.a:b"
    assert plain.presence_expire("a") == "centrifugo.presence.expire.a"
    assert plain.presence_user_expire("a") == "centrifugo.presence.user.expire.a"
    assert plain.presence_user_clients("a") == "centrifugo.presence.user.clients.a"
    assert plain.control == "centrifugo.control" and plain.node("n1") == "centrifugo.node.n1"
    assert plain.channel_of(b"centrifugo.client.a.b") == "a.b"
    assert plain.channel_of(b"other.client.a") is None
    cluster = KeyScheme("p", cluster=True)
    assert cluster.pubsub("news") == "p.client.{news}"
    assert cluster.stream_meta("news") == "p.stream.meta.{news}"
    assert cluster.channel_of(b"p.client.{x}y}") == "x}y"
    assert cluster.channel_of(b"p.client.news") is None


def test_publication_frames() -> None:
    info = ClientInfo("u", "c", b'{"a":1}', b"")
    pub = Publication(b'{"x":1}', info=info, tags={"t": "v"}, time=123)
    body = encode_publication(pub, False)
    assert body[:1] != b"_"
    kind, value = parse_message(body)
    assert kind == PUBLICATION and isinstance(value, Publication)
    assert (value.data, value.info, value.tags, value.time, value.offset) == (
        b'{"x":1}',
        info,
        {"t": "v"},
        123,
        0,
    )
    assert value.data_is_json is False  # unknown on the receiving side: JSON clients check
    kind, value = parse_message(b"__p1:42:abcdefgh__" + body)
    assert isinstance(value, Publication) and (value.offset, value.epoch) == (42, "abcdefgh")
    prev = b"p:r:e:v"
    frame = b"__d1:7:EPOCH:%d:%s:%d:%s" % (len(prev), prev, len(body), body)
    kind, value = parse_message(frame)
    assert isinstance(value, Publication)
    assert (value.offset, value.epoch, value.delta, value.data) == (7, "EPOCH", True, b'{"x":1}')
    kind, value = parse_message(encode_publication(pub, True))
    assert isinstance(value, Publication) and value.delta is True
    assert parse_message(join_frame(info)) == (JOIN, info)
    assert parse_message(leave_frame(info)) == (LEAVE, info)
    for bad in (b"__x__", b"__p1:1:e", b"__p2:1:e__", b"__d1:1:e:5:ab:1:x", b"\xff\xff"):
        with pytest.raises(WireError):
            parse_message(bad)


def test_addresses() -> None:
    config = RedisConfig(password="pw", io_timeout=2.0)  # type: ignore[arg-type]
    spec = parse_address("10.0.0.1:6380", config)
    assert (spec.kind, spec.hosts, spec.password, spec.io_timeout) == (
        STANDALONE,
        [("10.0.0.1", 6380)],
        "pw",
        2.0,
    )
    spec = parse_address("redis://user:secret@host:7000/3?io_timeout=500ms", config)
    assert (spec.hosts, spec.user, spec.password, spec.db, spec.io_timeout) == (
        [("host", 7000)],
        "user",
        "secret",
        3,
        0.5,
    )
    spec = parse_address(
        "redis+sentinel://s1:26379?sentinel_master_name=mm&addr=s2:26380,s3", config
    )
    assert spec.kind == SENTINEL and spec.master_name == "mm"
    assert spec.hosts == [("s1", 26379), ("s2", 26380), ("s3", 6379)]
    spec = parse_address("redis+cluster://c1:7000?addr=c2:7001", config)
    assert spec.kind == CLUSTER and spec.hosts == [("c1", 7000), ("c2", 7001)]
    assert parse_address("unix:///tmp/r.sock?db=2", config).unix_path == "/tmp/r.sock"
    assert parse_address("unix:///tmp/r.sock?db=2", config).kind == UNIX
    for bad in (
        "redis+sentinel://s1:26379",
        "rediss://h:1",
        "ftp://h",
        "redis://h:99999",
        "redis://h/x",
        "redis://h?bogus=1",
        "redis+cluster://h:1/2",
    ):
        with pytest.raises(AddressError):
            parse_address(bad, config)
    legacy = RedisConfig(sentinel_address=["a:1,b:2"], sentinel_master_name="m")
    (spec,) = shard_specs(legacy)
    assert spec.kind == SENTINEL and spec.hosts == [("a", 1), ("b", 2)]
    clusters = shard_specs(RedisConfig(cluster_address=["a:1,b:2", "c:3"]))
    assert [s.hosts for s in clusters] == [[("a", 1), ("b", 2)], [("c", 3)]]
    assert len(shard_specs(RedisConfig(address=["a:1", "b:2", "c:3"]))) == 3


def test_config_validation() -> None:
    config, warnings = load_config(
        None,
        overrides={"engine.type": "redis", "engine.redis.address": ["redis://127.0.0.1:6379"]},
    )
    assert config.engine.type == "redis"
    assert not [w for w in warnings if "engine.redis" in w]
    with pytest.raises(ConfigError, match="sentinel_master_name"):
        load_config(
            None,
            overrides={"engine.type": "redis", "engine.redis.address": ["redis+sentinel://h:1"]},
        )
    with pytest.raises(ConfigError, match="io_timeout"):
        load_config(None, overrides={"engine.type": "redis", "engine.redis.io_timeout": "0s"})
    _, warnings = load_config(
        None, overrides={"engine.type": "redis", "engine.redis.history_use_lists": True}
    )
    assert any("engine.redis.history_use_lists" in w for w in warnings)
