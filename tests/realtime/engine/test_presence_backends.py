"""The presence contract, on both backends (one process's memory, and Redis shared by processes)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from realtime.engine.presence import PresenceBackend
from realtime.engine.presence_memory import MemoryPresence
from realtime.engine.presence_redis import RedisPresence


@pytest.fixture(params=["memory", "redis"])
def backend_kind(request) -> str:
    return request.param


@pytest.fixture
def open_backend(backend_kind, redis_server, test_id):
    """An async context of a presence backend of this test's kind (made on the test's own loop)."""

    @contextlib.asynccontextmanager
    async def opened() -> AsyncIterator[PresenceBackend]:
        if backend_kind == "memory":
            yield MemoryPresence()
            return
        client = aioredis.from_url(redis_server.url)
        try:
            yield RedisPresence(client, test_id + ":")
        finally:
            await client.aclose()

    return opened


@pytest.mark.gen_test
async def test_a_refresh_brings_back_an_entry_that_expired_while_its_process_lagged(open_backend):
    async with open_backend() as backend:
        # A process whose loop lagged past the TTL refreshes late: its user is still connected, so the
        # refresh counts them again (Redis had pruned the entry on a read, and a refresh that only
        # updated existing entries left a connected user out of presence for good).
        await backend.add("room:w1", "node-a", "u1", {"name": "Ann"}, ttl=-1)  # expired at once
        await backend.add("room:w1", "node-a", "u2", {"name": "Bob"}, ttl=30)
        assert await backend.count("room:w1") == 1
        await backend.refresh("node-a", {"room:w1": ["u1", "u2"]}, ttl=30)
        assert await backend.count("room:w1") == 2
        assert [u["user"] for u in (await backend.roster("room:w1", 0, 10))[1]] == ["u1", "u2"]


@pytest.mark.gen_test
async def test_an_entry_not_refreshed_expires_and_a_removed_one_is_gone(open_backend):
    async with open_backend() as backend:
        await backend.add("room:w1", "node-a", "u1", {}, ttl=-1)  # a crashed process's entry
        await backend.add("room:w1", "node-b", "u2", {}, ttl=30)
        await backend.remove("room:w1", "node-b", "u2")
        assert await backend.count("room:w1") == 0
