"""Presence in Redis, shared by every process.

Per channel: a sorted set ``presence:{<channel>}`` of ``<node>|<user>`` members scored by expiry
time, and a hash ``presence-info:{<channel>}`` of user -> JSON info. The braces are a Redis Cluster
hash tag: a channel's two keys share one slot, so the pipelines over both stay on one node. A user
counts once however many nodes and tabs hold them; entries of a crashed node expire after the TTL.
Removals made at the same moment (a mass disconnect) go to Redis as pipelined batches
(realtime/engine/redis_batch.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

from realtime.engine.redis_batch import Batcher
from realtime.engine.redis_connect import RedisClient


class RedisPresence:
    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._removals = Batcher(redis)

    def _set(self, channel: str) -> str:
        return f"{self._prefix}presence:{{{channel}}}"

    def _info(self, channel: str) -> str:
        return f"{self._prefix}presence-info:{{{channel}}}"

    async def add(self, channel: str, node: str, user: str, info: dict[str, Any], ttl: float) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._set(channel), {f"{node}|{user}": time.time() + ttl})
            pipe.hset(self._info(channel), user, json.dumps(info))
            pipe.expire(self._set(channel), int(ttl * 4) + 60)
            pipe.expire(self._info(channel), int(ttl * 4) + 60)
            await pipe.execute()

    async def remove(self, channel: str, node: str, user: str) -> None:
        key, member = self._set(channel), f"{node}|{user}"
        await self._removals.run(lambda pipe: pipe.zrem(key, member))

    async def refresh(self, node: str, entries: dict[str, list[str]], ttl: float) -> None:
        if not entries:
            return
        expiry = time.time() + ttl
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel, users in entries.items():
                if users:
                    # Not only existing members: an entry that expired while this process lagged
                    # past the TTL was pruned by a read, and its user is still connected here.
                    pipe.zadd(self._set(channel), {f"{node}|{u}": expiry for u in users})
                    pipe.expire(self._set(channel), int(ttl * 4) + 60)
                    pipe.expire(self._info(channel), int(ttl * 4) + 60)
            await pipe.execute()

    async def _users(self, channel: str) -> set[str]:
        key = self._set(channel)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(key, "-inf", time.time())
            pipe.zrange(key, 0, -1)
            _, members = await pipe.execute()
        return {m.split(b"|", 1)[1].decode() for m in members}

    async def count(self, channel: str) -> int:
        return len(await self._users(channel))

    async def roster(self, channel: str, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        users = sorted(await self._users(channel))
        infos = await self._redis.hmget(self._info(channel), users) if users else []
        rows = [{"user": u, **(json.loads(i) if i else {})} for u, i in zip(users, infos, strict=True)]
        rows.sort(key=lambda r: (str(r.get("name", "")).lower(), r["user"]))
        return len(rows), rows[offset : offset + limit]

    async def close(self) -> None:
        await self._removals.close()
