"""REDIS_URL names one Redis, a Sentinel service or a Cluster; a bad one is refused with the reason."""

from __future__ import annotations

import pytest

from config import load_settings
from config.redis_url import RedisUrlError, parse_redis_url
from config.settings import ConfigError, shown_value
from realtime.engine.broker_memory import MemoryBroker
from realtime.engine.broker_redis import RedisBroker
from realtime.engine.broker_redis_cluster import RedisClusterBroker
from realtime.engine.brokers import open_broker, shared_redis
from realtime.process.registry import broker_identity


def test_a_single_server_url_is_handed_to_redis_py_as_written():
    target = parse_redis_url("rediss://:pw@cache:6380/2")
    assert (target.kind, target.url) == ("single", "rediss://:pw@cache:6380/2")
    assert parse_redis_url("unix:///run/redis.sock?db=1").kind == "single"


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database():
    target = parse_redis_url(
        "redis+sentinel://app:secret@s1:26379,s2,[::1]:26380/mymaster?db=3&sentinel_password=sp"
    )
    assert target.kind == "sentinel"
    assert target.hosts == (("s1", 26379), ("s2", 26379), ("::1", 26380))
    assert (target.service, target.db) == ("mymaster", 3)
    assert (target.username, target.password, target.sentinel_password) == ("app", "secret", "sp")
    assert not target.tls and parse_redis_url("rediss+sentinel://s1/m").tls


def test_a_cluster_url_names_its_seed_nodes():
    target = parse_redis_url("redis+cluster://:pw@n1:7000,n2:7001/")
    assert target.kind == "cluster"
    assert target.hosts == (("n1", 7000), ("n2", 7001))
    assert target.password == "pw"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://cache:6379", "must start with one of"),
        ("redis+sentinel://s1:26379,s2:26379", "service name"),
        ("redis+sentinel://s1:26379/a/b", "service name"),
        ("redis+sentinel:///mymaster", "at least one host"),
        ("redis+sentinel://s1:26379,,s2/m", "empty host"),
        ("redis+sentinel://s1:port/m", "bad port"),
        ("redis+sentinel://s1:70000/m", "bad port"),
        ("redis+sentinel://s1/m?db=x", "db must be a database number"),
        ("redis+sentinel://s1/m?timeout=3", "unknown option 'timeout'"),
        ("redis+cluster://n1:7000/1", "database 0 only"),
        ("redis+cluster://n1:7000?db=0", "unknown option 'db'"),
        ("redis://cache:99999/0", "port must be a number"),
    ],
)
def test_a_bad_url_is_refused_with_the_reason(url, reason):
    with pytest.raises(RedisUrlError, match=reason):
        parse_redis_url(url)


def test_settings_refuse_a_bad_redis_url_naming_the_setting_and_never_the_password(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(ConfigError) as refused:
        load_settings({"REDIS_URL": "redis+sentinel://:hunter2@s1:26379"}, toml_path=empty)
    assert str(refused.value).startswith("REDIS_URL: ") and "hunter2" not in str(refused.value)
    settings = load_settings({"REDIS_URL": "redis+sentinel://:hunter2@s1,s2/m?db=1"}, toml_path=empty)
    assert shown_value(settings.redis_url) == "redis+sentinel://:**********@s1,s2/m?**********"


def test_processes_with_the_same_topology_share_a_broker_identity_without_secrets():
    one = broker_identity("redis+sentinel://:pw@s2:26379,s1:26379/m?db=1", "wb:")
    other = broker_identity("redis+sentinel://s1:26379,s2:26379/m?db=1&sentinel_password=x", "wb:")
    assert one == other == "redis+sentinel://s1:26379,s2:26379/m db=1 prefix=wb:"
    assert broker_identity("redis+cluster://:pw@n1:7000", "wb:") == "redis+cluster://n1:7000 prefix=wb:"


@pytest.mark.gen_test
async def test_the_broker_is_picked_by_the_scheme():
    picked = [
        open_broker("", "wb:"),
        open_broker("redis://127.0.0.1:1/0", "wb:"),
        open_broker("redis+sentinel://127.0.0.1:1,127.0.0.1:2/m", "wb:"),
        open_broker("redis+cluster://127.0.0.1:1", "wb:"),
    ]
    kinds = [MemoryBroker, RedisBroker, RedisBroker, RedisClusterBroker]
    assert [type(b) for b in picked] == kinds
    assert [shared_redis(b) is None for b in picked] == [True, False, False, False]
    for broker in picked:
        await broker.close()
