"""A mass disconnect in Redis mode (issue 14): thousands of subscribers leave at the same moment, as
after a deploy or a network blip. Every presence clean-up and every shared connection-count removal
must land (no ``MaxConnectionsError``), so presence is exact afterwards instead of holding ghosts
until their TTL. The Redis client is the one the server builds (``server.make_broker``), against a
real redis-server."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ResponseError

from realtime.engine.presence import PresenceTracker
from realtime.engine.redis_batch import Batcher
from server import make_broker, make_connection_limits, make_presence

USERS = 3000
JOIN_CONCURRENCY = 20  # joins are not what is measured here: keep them under any pool size


async def no_publish(*args: object, **kwargs: object) -> None:
    return None


async def in_chunks(calls: list, size: int) -> None:
    for start in range(0, len(calls), size):
        await asyncio.gather(*(call() for call in calls[start : start + size]))


@pytest.mark.gen_test(timeout=120)
async def test_everyone_leaving_at_once_leaves_presence_exact(make_settings):
    settings = make_settings(redis=True)
    broker = make_broker(settings)
    backend = make_presence(settings, broker)
    tracker = PresenceTracker(backend, no_publish, ttl=600, interval=600)  # no round runs in the test
    room, other = "webinar:burst", "webinar:stays"
    try:
        users = [f"u{i}" for i in range(USERS)]
        await in_chunks([lambda u=u: tracker.join(room, u, {"name": u}) for u in users], JOIN_CONCURRENCY)
        await tracker.join(other, "stayer", {"name": "stayer"})
        assert await backend.count(room) == USERS

        outcomes = await asyncio.gather(
            *(tracker.leave(room, u, {"name": u}) for u in users), return_exceptions=True
        )

        failed = [o for o in outcomes if isinstance(o, BaseException)]
        assert failed == [], f"{len(failed)} of {USERS} clean-ups failed, first: {failed[0]!r}"
        assert await backend.count(room) == 0
        assert await backend.count(other) == 1
        total, rows = await backend.roster(other, 0, 10)
        assert (total, [r["user"] for r in rows]) == (1, ["stayer"])
    finally:
        await backend.close()
        await broker.close()


@pytest.mark.gen_test(timeout=120)
async def test_everyone_disconnecting_at_once_gives_every_shared_place_back(make_settings):
    settings = make_settings(redis=True, MAX_CONNECTIONS_PER_USER="1")
    broker = make_broker(settings)
    limits = make_connection_limits(settings, broker)
    try:
        users = [f"u{i}" for i in range(USERS)]
        places = []
        for start in range(0, USERS, JOIN_CONCURRENCY):
            chunk = users[start : start + JOIN_CONCURRENCY]
            places += await asyncio.gather(*(limits.take_user(u, f"c-{u}") for u in chunk))

        for place in places:
            limits.give_back(place)
        await limits.close()  # waits for the removals it spawned

        # Every shared place is free again: with a cap of one, each user may connect once more.
        again = make_connection_limits(settings, broker)
        try:
            for start in range(0, USERS, JOIN_CONCURRENCY):
                chunk = users[start : start + JOIN_CONCURRENCY]
                await asyncio.gather(*(again.take_user(u, f"d-{u}") for u in chunk))
        finally:
            await again.close()
    finally:
        await broker.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_batch_hands_each_caller_its_own_reply_or_error(make_settings, test_id):
    settings = make_settings(redis=True)
    broker = make_broker(settings)
    batcher = Batcher(broker.redis, max_batch=7)
    try:
        await broker.redis.set(f"{test_id}:plain", "x")
        await broker.redis.zadd(f"{test_id}:set", {f"m{i}": i for i in range(20)})
        calls = [batcher.run(lambda p, i=i: p.zrem(f"{test_id}:set", f"m{i}")) for i in range(20)]
        calls.append(batcher.run(lambda p: p.zrem(f"{test_id}:plain", "m")))  # WRONGTYPE
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert outcomes[:20] == [1] * 20
        assert isinstance(outcomes[20], ResponseError)
        assert await broker.redis.zcard(f"{test_id}:set") == 0
        await batcher.close()
    finally:
        await broker.close()
