"""The :class:`~storage.rate_limits.Limiter` for the publish API: in Redis when the broker is Redis
(every process counts together, one pipelined round trip), else in this process (then it is the only
one). Same sliding window as the MongoDB limiter."""

from __future__ import annotations

import collections
import logging
import time

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from storage.rate_limits import retry_after

log = logging.getLogger("storage.rate_limits")


class MemoryLimits:
    """Attempt times per key in this process. Bounded: a key idle for longer than its window is
    forgotten (keys are kept in order of last use, and the stale ones are dropped from the front)."""

    def __init__(self) -> None:
        self._keys: collections.OrderedDict[str, tuple[float, collections.deque[float]]] = (
            collections.OrderedDict()
        )

    async def hit(self, key: str, limit: int, window: float) -> int:
        if limit <= 0:
            return 0
        now = time.monotonic()
        _, attempts = self._keys.pop(key, (0.0, collections.deque(maxlen=limit + 1)))
        attempts.append(now)
        self._keys[key] = (now + window, attempts)
        while self._keys:
            first, (expires, _) = next(iter(self._keys.items()))
            if expires > now:
                break
            del self._keys[first]
        return retry_after(attempts, limit, window, now)


class RedisLimits:
    """Attempt times per key in a Redis list (newest first, trimmed to ``limit + 1``, expiring with its
    window). When Redis cannot be reached the attempt is allowed: the limit is a brake on abuse, and
    publishing goes on while Redis is down (docs/protocol.md)."""

    def __init__(self, redis: aioredis.Redis | RedisCluster, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + "rl:"

    async def hit(self, key: str, limit: int, window: float) -> int:
        if limit <= 0:
            return 0
        now = time.time()
        name = self.prefix + key
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.lpush(name, repr(now))
                pipe.ltrim(name, 0, limit)
                pipe.pexpire(name, max(1, int(window * 1000)))
                pipe.lrange(name, 0, limit)
                *_, newest_first = await pipe.execute()
        except RedisError as exc:
            log.warning("rate limit %s not checked: redis unavailable (%s)", key, exc)
            return 0
        attempts = sorted(float(x) for x in newest_first)
        return retry_after(attempts, limit, window, now)
