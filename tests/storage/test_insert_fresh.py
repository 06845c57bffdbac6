"""An insert retried after its first attempt was stored is not an error (storage/mongo.insert_fresh).

PyMongo retries a write once after a network error or a timeout; against a server that does not
deduplicate retried writes the retry of a stored insert fails with a duplicate key, which a loaded
full test run turned into a 500 from ``POST /api/realtime/tickets``. The retry is replayed here by
inserting the same document twice, as the driver's retry does."""

from __future__ import annotations

import pytest
from pymongo.errors import DuplicateKeyError

from storage.mongo import insert_fresh
from storage.tickets import Tickets


@pytest.mark.gen_test
async def test_the_retry_of_a_stored_insert_is_our_own_document(services):
    coll = services.db.fresh_inserts
    doc = {"text": "once"}
    await insert_fresh(coll, doc)  # PyMongo sets doc["_id"], and a retry sends it again
    await insert_fresh(coll, doc)
    assert await coll.count_documents({}) == 1


@pytest.mark.gen_test
async def test_a_duplicate_on_another_unique_key_is_still_an_error(services):
    coll = services.db.fresh_unique
    await coll.create_index("email", unique=True)
    await insert_fresh(coll, {"email": "a@example.com"})
    with pytest.raises(DuplicateKeyError):
        await insert_fresh(coll, {"email": "a@example.com"})


@pytest.mark.gen_test
async def test_a_ticket_whose_insert_is_retried_still_redeems_once(services):
    tickets = Tickets(services.db)
    stored: list[dict] = []
    real_insert = tickets._coll.insert_one

    async def stored_then_retried(doc, *args, **kwargs):
        # the first attempt is stored, then the driver retries it: the server answers duplicate key
        stored.append(doc)
        await real_insert(doc, *args, **kwargs)
        return await real_insert(doc, *args, **kwargs)

    tickets._coll.insert_one = stored_then_retried  # type: ignore[method-assign]
    ticket = await tickets.issue({"sub": "u1"})
    assert len(stored) == 1
    assert await tickets.redeem(ticket) == {"sub": "u1"}
