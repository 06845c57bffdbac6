"""Each user's live connections across processes, in Redis (the shared count of
realtime/engine/limits.py).

Per user a sorted set ``conns:<user>`` of connection ids scored by their expiry time; every process
refreshes its own before they expire, so the connections of a crashed process stop counting after
the TTL. Taking a place is one Lua script: drop expired members, count, add if under the cap.
Removals made at the same moment (a mass disconnect) go to Redis as pipelined batches.
"""

from __future__ import annotations

import time

from realtime.engine.redis_batch import Batcher
from realtime.engine.redis_connect import RedisClient

ADD = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


class RedisUserCount:
    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._add = redis.register_script(ADD)
        self._removals = Batcher(redis)

    def _key(self, user: str) -> str:
        return f"{self._prefix}conns:{user}"

    async def add(self, user: str, member: str, cap: int, ttl: float) -> bool:
        now = time.time()
        keep = int(ttl * 4) + 60
        return bool(await self._add(keys=[self._key(user)], args=[now, now + ttl, cap, member, keep]))

    async def remove(self, user: str, member: str) -> None:
        key = self._key(user)
        await self._removals.run(lambda pipe: pipe.zrem(key, member))

    async def refresh(self, members: dict[str, list[str]], ttl: float) -> None:
        if not members:
            return
        expiry = time.time() + ttl
        async with self._redis.pipeline(transaction=False) as pipe:
            for user, conns in members.items():
                if conns:
                    pipe.zadd(self._key(user), dict.fromkeys(conns, expiry), xx=True)
                    pipe.expire(self._key(user), int(ttl * 4) + 60)
            await pipe.execute()
