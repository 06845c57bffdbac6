"""One contract for every rate limiter (MongoDB, Redis, in-process), against the real servers: at most
``limit`` attempts per window, the seconds to wait when refused, keys apart, 0 for no limit; the shared
ones count together across instances (processes); the Redis one lets attempts through when Redis is down."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from storage import mongo
from storage import rate_limits as mongo_limits
from storage.rate_limits import RateLimits
from storage.rate_limits_live import MemoryLimits, RedisLimits
from tests.servers import free_port


@pytest.fixture
def db(io_loop, mongo_server, test_id):
    client = io_loop.run_sync(lambda: _open(mongo_server.url))
    database = client[test_id]
    io_loop.run_sync(lambda: mongo_limits.create_indexes(database))
    yield database
    io_loop.run_sync(client.close)


async def _open(url):
    return mongo.open_client(url)


@pytest.fixture
def redis_client(io_loop, redis_server):
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    io_loop.run_sync(client.aclose)


@pytest.fixture(params=["mongo", "redis", "memory"])
def pair(request, test_id):
    """Two limiters as two processes would hold them (the same one twice for in-process)."""
    if request.param == "mongo":
        db = request.getfixturevalue("db")
        return RateLimits(db), RateLimits(db)
    if request.param == "redis":
        client = request.getfixturevalue("redis_client")
        return RedisLimits(client, f"{test_id}:"), RedisLimits(client, f"{test_id}:")
    memory = MemoryLimits()
    return memory, memory


@pytest.mark.gen_test
async def test_at_most_limit_per_window_with_the_wait(pair):
    a, b = pair
    assert [await a.hit("k", 2, 60), await b.hit("k", 2, 60)] == [0, 0]  # two "processes", one count
    wait = await a.hit("k", 2, 60)
    assert 1 <= wait <= 60
    assert await b.hit("k", 2, 60) >= 1  # refused attempts count too
    assert await a.hit("other", 2, 60) == 0
    assert [await a.hit("free", 0, 60) for _ in range(5)] == [0] * 5


@pytest.mark.gen_test
async def test_memory_limits_forget_idle_keys():
    limits = MemoryLimits()
    for i in range(100):
        await limits.hit(f"k{i}", 1, 0.000001)
    await limits.hit("last", 1, 60)
    assert list(limits._keys) == ["last"]


@pytest.mark.gen_test
async def test_redis_down_lets_attempts_through(io_loop):
    client = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    try:
        limits = RedisLimits(client, "x:")
        assert [await limits.hit("k", 1, 60) for _ in range(3)] == [0, 0, 0]
    finally:
        await client.aclose()
