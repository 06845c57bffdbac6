"""The connection caps (realtime/engine/limits.py): per process, and per user across processes with
the shared count in a real Redis (two ConnectionLimits on one Redis stand for two processes)."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from realtime.engine.limits import ConnectionLimits
from realtime.engine.limits_redis import RedisUserCount
from storage.errors import Refused


@pytest.fixture
def redis_count(io_loop, redis_server, test_id):
    client = aioredis.Redis.from_url(redis_server.url)
    yield RedisUserCount(client, f"{test_id}:")
    io_loop.run_sync(client.aclose)


async def refused(limits: ConnectionLimits, user: str, conn: str) -> str:
    with pytest.raises(Refused) as exc:
        await limits.take_user(user, conn)
    return exc.value.code


@pytest.mark.gen_test
async def test_per_process_caps_and_places_given_back():
    limits = ConnectionLimits(2, 1)
    places = [await limits.take_user("ann", c) for c in ("c1", "c2")]
    assert await refused(limits, "ann", "c3") == "too_many_connections"
    await limits.take_user("bob", "c4")  # another user's cap
    limits.give_back(places[0])
    await limits.take_user("ann", "c3")
    address = limits.take_address("10.0.0.1")
    with pytest.raises(Refused):
        limits.take_address("10.0.0.1")
    limits.take_address("10.0.0.2")
    limits.give_back(address)
    limits.take_address("10.0.0.1")
    unlimited = ConnectionLimits(0, 0)
    for i in range(100):
        await unlimited.take_user("ann", f"c{i}")
        unlimited.take_address("10.0.0.1")


@pytest.mark.gen_test(timeout=30)
async def test_the_user_cap_holds_across_processes_and_a_closed_place_frees_on_all(redis_count):
    one = ConnectionLimits(2, 0, redis_count, ttl=30)
    two = ConnectionLimits(2, 0, redis_count, ttl=30)
    first = await one.take_user("ann", "a1")
    await two.take_user("ann", "b1")
    assert await refused(one, "ann", "a2") == "too_many_connections"
    assert await refused(two, "ann", "b2") == "too_many_connections"
    assert one.held("user", "ann") == 1  # the refused attempt left nothing behind
    one.give_back(first)
    await one.close()  # lets the removal from Redis finish
    await two.take_user("ann", "b2")
    await two.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_crashed_processs_connections_stop_counting_after_the_ttl(redis_count):
    crashed = ConnectionLimits(1, 0, redis_count, ttl=0.5)  # never refreshes, never closes
    await crashed.take_user("ann", "gone")
    alive = ConnectionLimits(1, 0, redis_count, ttl=30)
    alive.start()
    assert await refused(alive, "ann", "new") == "too_many_connections"

    async def until_admitted() -> None:
        # Expiry is time in Redis, not an event this test could await; retry until it has passed.
        while True:
            try:
                await alive.take_user("ann", "new")
                return
            except Refused:
                await asyncio.sleep(0.1)

    await asyncio.wait_for(until_admitted(), 10)
    await alive.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_live_process_refreshes_its_places_before_they_expire(redis_count, redis_server, test_id):
    holder = ConnectionLimits(1, 0, redis_count, ttl=0.6)
    holder.start()
    await holder.take_user("ann", "kept")
    client = aioredis.Redis.from_url(redis_server.url)
    key = f"{test_id}:conns:ann"
    first = await client.zscore(key, "kept")

    async def until_refreshed() -> None:
        # The refresh runs on the holder's own clock; wait until its expiry has moved on.
        while await client.zscore(key, "kept") == first:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    await asyncio.wait_for(until_refreshed(), 10)
    assert await client.zscore(key, "kept") > first
    await holder.close()
    assert await client.zscore(key, "kept") is None  # a clean close removes its places
    await client.aclose()
