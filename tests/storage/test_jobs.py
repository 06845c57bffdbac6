"""The durable job queue and the worker loop, against the real MongoDB-wire server."""

import asyncio
import datetime as dt

import pytest
from pymongo.errors import AutoReconnect

from realtime.jobs.worker import RetryLater, Worker
from storage import jobs as jobs_mod
from storage import mongo
from storage.jobs import JobQueue


@pytest.fixture
def db(io_loop, mongo_server, test_id):
    client = io_loop.run_sync(lambda: _open(mongo_server.url))
    database = client[test_id]
    io_loop.run_sync(lambda: jobs_mod.create_indexes(database))
    yield database
    io_loop.run_sync(client.close)


async def _open(url):
    return mongo.open_client(url)


@pytest.mark.gen_test
async def test_enqueue_with_key_is_idempotent(db):
    queue = JobQueue(db)
    first = await queue.enqueue("k", {"a": 1}, key="once")
    second = await queue.enqueue("k", {"a": 2}, key="once")
    assert first == second
    assert await db.jobs.count_documents({}) == 1
    assert (await queue.get(first))["payload"] == {"a": 1}


@pytest.mark.gen_test
async def test_concurrent_claims_hand_each_job_to_one_owner(db):
    queue = JobQueue(db)
    ids = {await queue.enqueue("k", {"n": n}) for n in range(20)}
    claims = await asyncio.gather(*(queue.claim(f"w{n}", 30) for n in range(40)))
    got = [c.id for c in claims if c is not None]
    assert sorted(got) == sorted(ids)  # every job once, none twice


@pytest.mark.gen_test
async def test_future_jobs_wait_and_expired_leases_are_reclaimed(db):
    queue = JobQueue(db)
    later = jobs_mod.now() + dt.timedelta(hours=1)
    await queue.enqueue("k", {}, run_at=later)
    assert await queue.claim("w1", 30) is None
    job_id = await queue.enqueue("k", {})
    dead = await queue.claim("w1", 30)
    assert dead.id == job_id and await queue.claim("w2", 30) is None
    # The owner dies: its lease runs out, another worker takes over; the dead one cannot complete.
    await db.jobs.update_one({"_id": job_id}, {"$set": {"lease_until": jobs_mod.now()}})
    taken = await queue.claim("w2", 30)
    assert taken.id == job_id and taken.attempts == 2
    assert not await queue.complete(dead)
    assert await queue.complete(taken, {"ok": True})
    assert (await queue.get(job_id))["status"] == "done"


@pytest.mark.gen_test
async def test_a_worker_takes_only_its_kinds_and_leaves_the_skipped_ones(db):
    """The mail process takes the mail's kinds only, the serving processes every other: a job of a
    kind a worker leaves, even the oldest due or one whose lease lapsed, is never claimed by it."""
    queue = JobQueue(db)
    mail = await queue.enqueue("mail.send", {})
    other = await queue.enqueue("notify.fanout", {})
    assert await queue.claim("serving", 30, kinds={"notify.fanout"}, skip={"mail.send"}) is not None
    await db.jobs.update_one({"_id": other}, {"$set": {"lease_until": jobs_mod.now()}})  # lapsed
    serving = Worker(queue, poll_interval=0.05, skip=frozenset({"mail.send"}))
    mailer = Worker(queue, poll_interval=0.05, kinds=frozenset({"mail.send"}))
    ran: dict[str, list[str]] = {"serving": [], "mail": []}
    for name, worker in (("serving", serving), ("mail", mailer)):
        for kind in ("mail.send", "notify.fanout"):
            worker.register(kind, lambda job, name=name: ran[name].append(job.id) or asyncio.sleep(0))
    assert await serving.run_one() and not await serving.run_one()
    assert await mailer.run_one() and not await mailer.run_one()
    assert ran == {"serving": [other], "mail": [mail]}
    assert {d["status"] for d in await db.jobs.find().to_list()} == {"done"}


@pytest.mark.gen_test
async def test_failures_back_off_then_fail(db):
    queue = JobQueue(db)
    job_id = await queue.enqueue("k", {}, max_attempts=2)
    job = await queue.claim("w", 30)
    assert await queue.fail(job, "boom", retry_in=0)
    job = await queue.claim("w", 30)
    assert job.attempts == 2
    assert await queue.fail(job, "boom again")
    doc = await queue.get(job_id)
    assert doc["status"] == "failed" and doc["last_error"] == "boom again"


@pytest.mark.gen_test
async def test_cancel_and_requeue(db):
    queue = JobQueue(db)
    await queue.enqueue("reminder", {"webinar_id": "w1"}, key="r1", run_at=jobs_mod.now())
    assert await queue.cancel({"kind": "reminder", "payload.webinar_id": "w1"}) == 1
    assert await queue.claim("w", 30) is None
    assert await queue.requeue("r1", jobs_mod.now(), {"webinar_id": "w1"})
    assert (await queue.claim("w", 30)).key == "r1"


@pytest.mark.gen_test
async def test_worker_runs_jobs_retries_and_stops(db):
    queue = JobQueue(db)
    worker = Worker(queue, poll_interval=0.05, lease_seconds=5)
    done = asyncio.Event()
    seen: list[int] = []

    async def flaky(job):
        seen.append(job.attempts)
        if job.attempts < 2:
            raise RetryLater("not yet", delay=0)
        done.set()
        return {"attempts": job.attempts}

    worker.register("flaky", flaky)
    worker.start()
    try:
        job_id = await queue.enqueue("flaky", {})
        worker.wake()
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await worker.close()
    assert seen == [1, 2]
    doc = await queue.get(job_id)
    assert doc["status"] == "done" and doc["result"] == {"attempts": 2}


@pytest.mark.gen_test(timeout=30)
async def test_close_while_woken_stops_the_worker(db):
    """A wake-up and a close in the same loop step (a job queued as the server stops): the close must
    still stop the loop. With ``asyncio.wait_for`` the cancellation was swallowed on Python 3.11 and
    the services' close hung (seen under load)."""
    worker = Worker(JobQueue(db), poll_interval=60, lease_seconds=5)
    worker.start()
    for _ in range(1000):  # until the loop has found nothing due and waits (one database round trip)
        if worker.idle:
            break
        await asyncio.sleep(0.01)
    assert worker.idle
    worker.wake()
    closing = asyncio.ensure_future(worker.close())
    done, _ = await asyncio.wait({closing}, timeout=20)  # not wait_for: its cancel would end the hang
    if not done:
        closing.cancel()
    assert closing in done, "close() hung: the worker loop swallowed its cancellation"


class CancelBecomesAutoReconnect(JobQueue):
    """The real queue, but a cancellation that lands in ``claim`` comes out as ``AutoReconnect``:
    what PyMongo 4.20's async client did to 1 in 200 cancels of an operation on a killed server
    (the services' close then hung for 120 s in the database-outage test)."""

    async def claim(self, owner, lease_seconds):
        try:
            return await super().claim(owner, lease_seconds)
        except asyncio.CancelledError:
            raise AutoReconnect("connection closed") from None


@pytest.mark.gen_test(timeout=60)
async def test_a_cancellation_a_library_turned_into_an_error_still_stops_the_worker(db):
    worker = Worker(CancelBecomesAutoReconnect(db), poll_interval=0.01, lease_seconds=5)
    worker.start()
    # a claim in flight at the close: the database answers slowly while it scans
    await db.jobs.insert_many([{"status": "done", "n": n} for n in range(2000)])
    for _ in range(200):
        closing = asyncio.ensure_future(worker.close())
        done, _ = await asyncio.wait({closing}, timeout=20)
        if not done:
            closing.cancel()
        assert closing in done, (
            "close() hung: the worker went on after its cancellation was turned into an error"
        )
        worker.start()
    await worker.close()


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_enqueues_of_one_key_all_answer_the_one_job(db):
    """Processes starting together each queue the same keyed job (the retention run): every enqueue
    answers the id of the one job, none fails (a lost upsert race returned no document)."""
    queue = JobQueue(db)
    for n in range(20):
        ids = await asyncio.gather(*[queue.enqueue("k", {"n": n}, key=f"race-{n}") for _ in range(8)])
        assert len(set(ids)) == 1
        assert await db.jobs.count_documents({"key": f"race-{n}"}) == 1
