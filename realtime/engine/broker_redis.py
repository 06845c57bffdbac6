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
import collections
import contextlib
import logging
from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from realtime import metrics
from realtime.engine.broker import BrokerUnavailable, MessageCallback, RecoverCallback
from realtime.engine.control import CONTROL

log = logging.getLogger("realtime.engine.broker_redis")

MAX_BACKOFF = 5.0
CONFIRM_TIMEOUT = 5.0  # the longest a subscribe waits for Redis's confirmation
# The process's Redis connections, shared by the broker, presence and the limits. A burst (a mass
# disconnect, a join storm) waits for a free connection, at most POOL_TIMEOUT seconds, instead of
# failing at once with MaxConnectionsError as redis-py's default pool does past its 100.
POOL_SIZE = 50
POOL_TIMEOUT = 5.0


class RedisBroker:
    def __init__(self, url: str, prefix: str = "wb:") -> None:
        self._url = url
        self._prefix = prefix
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, timeout=POOL_TIMEOUT, socket_timeout=5, socket_connect_timeout=5
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._channels: set[str] = set()
        self._pubsub: aioredis.client.PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_message: MessageCallback | None = None
        self._on_recover: RecoverCallback | None = None
        self._confirming: dict[bytes, collections.deque[asyncio.Future[None]]] = {}
        self._commands = asyncio.Lock()  # SUBSCRIBE/UNSUBSCRIBE sent one at a time, in call order
        self.connected = asyncio.Event()

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    def _key(self, channel: str) -> str:
        return self._prefix + "ch:" + channel

    async def start(self, on_message: MessageCallback, on_recover: RecoverCallback) -> None:
        self._on_message = on_message
        self._on_recover = on_recover
        self._task = asyncio.create_task(self._listen(), name="redis-broker-listener")
        # Wait briefly for the first connection so early subscribers are not racing it; a Redis
        # that is down at start-up is retried in the background like any later outage.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), 5)

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
                        self._confirmed(message["channel"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                metrics.BROKER_LISTEN_ERRORS.inc()
                if self.connected.is_set() or first:
                    log.warning("redis broker connection lost (%s); retrying", type(exc).__name__)
            finally:
                self.connected.clear()
                self._pubsub = None
                self._release_waiters()  # resubscribed on reconnect, and on_recover repairs
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
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

    def _confirmed(self, key: bytes) -> None:
        waiting = self._confirming.get(key)
        if waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
            if not waiting:
                del self._confirming[key]

    def _release_waiters(self) -> None:
        for waiting in self._confirming.values():
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_result(None)
        self._confirming.clear()

    async def subscribe(self, channel: str) -> None:
        """Subscribe and wait until Redis confirms it (up to CONFIRM_TIMEOUT); while Redis is down,
        return at once: the listener resubscribes everything in ``_channels`` when it reconnects."""
        self._channels.add(channel)
        key = self._key(channel)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            async with self._commands:
                pubsub = self._pubsub
                if pubsub is None:
                    return
                self._confirming.setdefault(key.encode(), collections.deque()).append(waiter)
                await pubsub.subscribe(key)
            await asyncio.wait_for(asyncio.shield(waiter), CONFIRM_TIMEOUT)
        except (RedisError, OSError):
            log.debug("subscribe to %s deferred until reconnect", channel)
        except TimeoutError:
            log.warning("redis did not confirm subscribing to %s in %.0f s", channel, CONFIRM_TIMEOUT)
        finally:
            waiting = self._confirming.get(key.encode())
            if waiting is not None and waiter in waiting:
                waiting.remove(waiter)
                if not waiting:
                    del self._confirming[key.encode()]

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        async with self._commands:
            pubsub = self._pubsub
            if pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.unsubscribe(self._key(channel))

    async def ready(self) -> bool:
        try:
            return bool(await self._redis.ping()) and self.connected.is_set()
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._redis.aclose()
