"""Redis pub/sub broker: live messages cross server processes.

One pub/sub connection per process holds one Redis subscription per channel that has local
subscribers. A lost connection is re-established with capped exponential backoff; every live channel
is then resubscribed and ``on_recover`` is told which channels may have missed messages.

redis-py's ``PubSub.subscribe`` only sends the command; Redis's confirmation arrives later on the
listening connection. ``subscribe`` here waits for that confirmation (the hub reads history after it,
so nothing published in between is missed), and the commands are sent one at a time so that an
unsubscribe and the next subscribe of a channel reach Redis in the order they were made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime import metrics
from realtime.engine.broker import BrokerUnavailable
from realtime.engine.broker_redis_base import MAX_BACKOFF, RedisBrokerBase
from realtime.engine.control import CONTROL
from realtime.engine.redis_connect import connect

log = logging.getLogger("realtime.engine.broker_redis")


class RedisBroker(RedisBrokerBase):
    """One Redis server, or the master of a Sentinel service (``REDIS_URL`` ``redis+sentinel://``):
    after a failover the listener's reconnect asks the sentinels for the new master."""

    FAILURES = (RedisError, OSError)

    def __init__(self, url: str, prefix: str = "wb:") -> None:
        connection = connect(url)
        if connection.target.kind == "cluster":
            raise ValueError("a redis+cluster:// URL needs RedisClusterBroker (broker_redis_cluster.py)")
        super().__init__(connection, prefix)
        redis = connection.client
        assert isinstance(redis, aioredis.Redis)
        self._redis = redis
        self._pubsub: aioredis.client.PubSub | None = None

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    async def _listen(self) -> None:
        backoff = 0.05
        first = True
        skip = len(self._prefix) + 3
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=False)
            try:
                channels = list(self._channels)
                await pubsub.subscribe(self._key(CONTROL), *(self._key(c) for c in channels))
                self._pubsub = pubsub
                self.connected.set()
                if not first:
                    metrics.BROKER_RECONNECTS.inc()
                    log.info("redis broker reconnected; resubscribed %d channels", len(channels))
                    if self._on_recover is not None:
                        self._on_recover(channels)
                first = False
                backoff = 0.05
                on_message = self._on_message
                async for message in pubsub.listen():
                    kind = message["type"]
                    if kind == "message" and on_message is not None:
                        try:
                            on_message(message["channel"][skip:].decode(), message["data"])
                        except Exception:
                            log.exception("broker callback failed")
                    elif kind == "subscribe":
                        self._confirming.confirmed(message["channel"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                metrics.BROKER_LISTEN_ERRORS.inc()
                if self.connected.is_set() or first:
                    log.warning("redis broker connection lost (%s); retrying", type(exc).__name__)
            finally:
                self.connected.clear()
                self._pubsub = None
                self._confirming.release_all()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def publish(self, channel: str, payload: bytes) -> None:
        try:
            await self._redis.publish(self._key(channel), payload)
        except (RedisError, OSError) as exc:
            metrics.BROKER_PUBLISH_ERRORS.inc()
            raise BrokerUnavailable(str(exc) or type(exc).__name__) from exc

    async def publish_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel, payload in items:
                    pipe.publish(self._key(channel), payload)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            metrics.BROKER_PUBLISH_ERRORS.inc()
            raise BrokerUnavailable(str(exc) or type(exc).__name__) from exc

    async def _send_subscribe(self, key: str) -> bool:
        if self._pubsub is None:
            return False
        await self._pubsub.subscribe(key)
        return True

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        async with self._commands:
            pubsub = self._pubsub
            if pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.unsubscribe(self._key(channel))
