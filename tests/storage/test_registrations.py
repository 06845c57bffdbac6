"""Registrations against the real MongoDB-wire server: seats are never over-filled, and capacity
edits move the free seats with them."""

import asyncio

import pytest

from storage.accounts import now
from storage.errors import Refused
from storage.registrations import Registrations
from storage.webinars import Webinars


async def webinar(store, **fields):
    return await store.create(
        "owner", {"title": "T", "starts_at": now(), "timezone": "UTC", "duration_minutes": 30, **fields}
    )


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_registrations_and_capacity_edits(services):
    store = Webinars(services.db)
    regs = Registrations(services.db, store)
    w = await webinar(store, capacity=5)

    async def attempt(i):
        try:
            await regs.register(w, f"u{i}", f"u{i}@example.com", f"U{i}")
            return True
        except Refused as exc:
            assert exc.code == "webinar_full"
            return False

    results = await asyncio.gather(*[attempt(i) for i in range(20)])
    assert results.count(True) == 5
    with pytest.raises(Refused) as err:
        await store.update(w["_id"], {"capacity": 4})
    assert err.value.code == "capacity_below_registrations"
    await store.update(w["_id"], {"capacity": 7})
    results = await asyncio.gather(*[attempt(i) for i in range(20, 30)])
    assert results.count(True) == 2
    got = await store.get(w["_id"])
    assert (got["seats_taken"], got["seats_left"]) == (7, 0)
    await store.update(w["_id"], {"capacity": 0})  # unlimited
    assert await attempt(99)
    assert await services.db.registrations.count_documents({"webinar_id": w["_id"]}) == 8
