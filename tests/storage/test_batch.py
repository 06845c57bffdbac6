"""Coalesced lookups (storage/batch.py) against the real MongoDB-wire server: concurrent reads share
queries, and a write made before a read is always seen by it (never a stale answer)."""

import asyncio

import pytest

from storage.batch import Batcher
from storage.moderation import Moderation


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_lookups_share_queries_and_each_gets_its_own_answer(services):
    moderation = Moderation(services.db)
    await moderation.set("w1", "u7", banned=True)
    await moderation.set("w1", "u8", muted=True)
    flags = await asyncio.gather(*(moderation.flags("w1", f"u{i}") for i in range(100)))
    assert moderation._by_id.fetches <= 2  # one query, or two when one was already in flight
    assert [i for i, f in enumerate(flags) if f["banned"]] == [7]
    assert [i for i, f in enumerate(flags) if f["muted"]] == [8]
    assert await moderation.flags("w2", "u7") == {"muted": False, "banned": False}


@pytest.mark.gen_test(timeout=60)
async def test_a_ban_written_while_a_batch_is_in_flight_is_seen_by_the_next_lookup(services):
    moderation = Moderation(services.db)
    moderation._by_id.concurrency = 1
    early = [asyncio.ensure_future(moderation.flags("w1", f"u{i}")) for i in range(50)]
    await asyncio.sleep(0)  # the first batch is sent
    await moderation.set("w1", "u1", banned=True)  # a host bans u1, then u1 joins again
    assert (await moderation.flags("w1", "u1"))["banned"]
    await asyncio.gather(*early)


@pytest.mark.gen_test(timeout=60)
async def test_a_failed_query_fails_its_own_batch_only(services):
    async def fetch(keys: list[str]) -> dict[str, int]:
        if "bad" in keys:
            raise RuntimeError("query failed")
        return {doc["_id"]: 1 async for doc in services.db.moderation.find({"_id": {"$in": keys}})}

    await services.db.moderation.insert_one({"_id": "good"})
    batcher: Batcher[str, int] = Batcher(fetch, missing=0, concurrency=1)
    first = asyncio.gather(batcher.get("bad"), batcher.get("x"), return_exceptions=True)
    await asyncio.sleep(0)
    second = asyncio.ensure_future(batcher.get("good"))  # asked while the failing one is in flight
    assert [type(r) for r in await first] == [RuntimeError, RuntimeError]
    assert await second == 1
