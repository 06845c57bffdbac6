"""The broker is picked from ``REDIS_URL`` here, and only here: in-process when it is empty, the
sharded pub/sub broker for ``redis+cluster://``, else one Redis server or a Sentinel service."""

from __future__ import annotations

from config.redis_url import parse_redis_url
from realtime.engine.broker import Broker
from realtime.engine.broker_memory import MemoryBroker
from realtime.engine.broker_redis import RedisBroker
from realtime.engine.broker_redis_cluster import RedisClusterBroker
from realtime.engine.redis_connect import RedisClient


def open_broker(redis_url: str, prefix: str) -> Broker:
    if not redis_url:
        return MemoryBroker()
    if parse_redis_url(redis_url).kind == "cluster":
        return RedisClusterBroker(redis_url, prefix)
    return RedisBroker(redis_url, prefix)


def shared_redis(broker: Broker) -> RedisClient | None:
    """The Redis client presence and limits share with ``broker``; None for the in-process broker."""
    if isinstance(broker, RedisBroker | RedisClusterBroker):
        return broker.redis
    return None
