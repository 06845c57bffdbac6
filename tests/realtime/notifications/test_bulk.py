"""Bulk fan-out: 10,000 registrants in chunks, not one insert and one publish per person."""

import time

import pytest

from tests.realtime.notifications.test_triggers import run_all

RECIPIENTS = 10_000


class CountingPublisher:
    """Delegates to the real hub and counts the calls."""

    def __init__(self, hub):
        self.hub = hub
        self.calls = []

    async def publish(self, channel, type, data, *, durable=True):
        self.calls.append(1)
        return await self.hub.publish(channel, type, data, durable=durable)

    async def publish_many(self, items, *, durable=True):
        items = list(items)
        self.calls.append(len(items))
        return await self.hub.publish_many(items, durable=durable)


@pytest.mark.gen_test(timeout=300)
async def test_fanout_to_10000_registrants_is_bulk_and_complete(io_loop, services):
    n = services.notifications
    await n.worker.close()
    db = services.db
    regs = [
        {"_id": f"r{i}", "webinar_id": "big", "user_id": f"user{i}", "email": f"u{i}@x", "status": "approved"}
        for i in range(RECIPIENTS)
    ]
    await db.registrations.insert_many(regs)
    publisher = CountingPublisher(services.hub)
    n.notifier.publisher = publisher
    inserts = []
    insert_many = n.notifier.inbox.insert_many

    async def counting_insert(docs):
        inserts.append(len(docs))
        return await insert_many(docs)

    n.notifier.inbox.insert_many = counting_insert

    started = time.perf_counter()
    job_id = await n.notifier.enqueue_fanout(
        category="live", title="Big is live", body="", url="/", webinar_id="big", key="live:big"
    )
    assert await run_all(n.worker) == 1
    elapsed = time.perf_counter() - started
    job = await n.jobs.get(job_id)
    assert job["status"] == "done" and job["result"] == {"recipients": RECIPIENTS, "created": RECIPIENTS}
    assert inserts == [1000] * 10 and publisher.calls == [1000] * 10
    assert await db.notifications.count_documents({"category": "live"}) == RECIPIENTS
    assert await db.history.count_documents({"t": "notification"}) == RECIPIENTS
    print(f"bulk fan-out to {RECIPIENTS} registrants: {elapsed:.1f}s")
