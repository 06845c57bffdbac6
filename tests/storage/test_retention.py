"""Retention against the real MongoDB-wire server: what is older than its setting goes, in batches,
the rest stays; the server runs it on its own, once per slot however many processes schedule it."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from bson import ObjectId

from realtime.jobs.retention import RETENTION_JOB, RetentionSchedule
from realtime.jobs.worker import Worker
from storage import jobs as jobs_mod
from storage import mongo, retention
from storage.jobs import JobQueue

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
OLD = NOW - dt.timedelta(days=40)
NEW = NOW - dt.timedelta(days=5)


@pytest.fixture
def db(io_loop, mongo_server, test_id):
    client = io_loop.run_sync(lambda: _open(mongo_server.url))
    database = client[test_id]
    io_loop.run_sync(lambda: jobs_mod.create_indexes(database))
    yield database
    io_loop.run_sync(client.close)


async def _open(url):
    return mongo.open_client(url)


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


async def seed(db) -> None:
    """One old and one recent document of every kind retention covers (and some it must not)."""
    history = [
        {"c": channel, "s": n, "t": "chat", "d": {}, "ts": ms(at)}
        for n, (channel, at) in enumerate(
            [("room:w1", OLD), ("room:w1", NEW), ("backstage:w1", OLD), ("user:u1", OLD)], start=1
        )
    ]
    await db.history.insert_many(history)
    for name in ("chat", "questions", "announcements"):
        await db[name].insert_many(
            [
                {"_id": f"{name}-old", "webinar_id": "w1", "created_at": OLD},
                {"_id": f"{name}-new", "webinar_id": "w1", "created_at": NEW},
            ]
        )
    await db.notifications.insert_many(
        [
            {"_id": ObjectId.from_datetime(OLD), "user_id": "u1", "key": "a"},
            {"_id": ObjectId.from_datetime(NEW), "user_id": "u1", "key": "b"},
        ]
    )
    await db.attendance.insert_many(
        [
            {"_id": "a-old", "webinar_id": "w1", "joined_at": OLD},
            {"_id": "a-new", "webinar_id": "w1", "joined_at": NEW},
        ]
    )
    await db.jobs.insert_many(
        [
            {"_id": "j-done-old", "status": "done", "finished_at": OLD},
            {"_id": "j-failed-old", "status": "failed", "finished_at": OLD},
            {"_id": "j-done-new", "status": "done", "finished_at": NEW},
            {"_id": "j-queued-old", "status": "queued", "run_at": OLD},
        ]
    )


async def ids(collection) -> list:
    return sorted([doc["_id"] async for doc in collection.find({}, {"_id": 1})])


async def eventually(check, timeout: float = 60.0):
    """Poll ``check`` until it returns something true (generous: only a failure reaches the limit)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


@pytest.mark.gen_test(timeout=60)
async def test_everything_older_than_its_setting_goes_and_the_rest_stays(db):
    await seed(db)
    policy = retention.Policy(room_history_days=30, inbox_days=30, attendance_days=30, finished_job_days=30)
    counts = await retention.apply(db, policy, now=NOW)
    assert counts == {
        "room_history": 2,
        "chat": 1,
        "questions": 1,
        "announcements": 1,
        "inbox": 1,
        "attendance": 1,
        "jobs": 2,
    }
    left = [(d["c"], d["ts"]) async for d in db.history.find({}, {"_id": 0, "c": 1, "ts": 1}).sort("s")]
    assert left == [("room:w1", ms(NEW)), ("user:u1", ms(OLD))]  # personal channels trim by size
    for name in ("chat", "questions", "announcements"):
        assert await ids(db[name]) == [f"{name}-new"]
    assert await ids(db.notifications) == [ObjectId.from_datetime(NEW)]
    assert await ids(db.attendance) == ["a-new"]
    assert await ids(db.jobs) == ["j-done-new", "j-queued-old"]


@pytest.mark.gen_test(timeout=60)
async def test_zero_days_keeps_forever(db):
    await seed(db)
    assert await retention.apply(db, retention.Policy(), now=NOW) == {}
    assert await db.history.count_documents({}) == 4
    assert await db.jobs.count_documents({}) == 4


@pytest.mark.gen_test(timeout=60)
async def test_a_backlog_is_deleted_in_batches(db, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 7)
    await db.attendance.insert_many([{"webinar_id": "w", "joined_at": OLD} for _ in range(30)])
    await db.attendance.insert_one({"webinar_id": "w", "joined_at": NEW})
    assert await retention.apply(db, retention.Policy(attendance_days=30), now=NOW) == {"attendance": 30}
    assert await db.attendance.count_documents({}) == 1


@pytest.mark.gen_test(timeout=60)
async def test_the_legacy_finished_jobs_ttl_index_is_replaced(db):
    await db.jobs.drop_indexes()
    await db.jobs.create_index("finished_at", expireAfterSeconds=14 * 86400)
    await jobs_mod.create_indexes(db)
    assert "expireAfterSeconds" not in (await db.jobs.index_information())["finished_at_1"]


@pytest.mark.gen_test(timeout=60)
async def test_several_processes_schedule_one_run_per_slot(db, make_settings):
    settings = make_settings(RETENTION_INTERVAL="3600")
    first = RetentionSchedule(db, JobQueue(db), settings)
    second = RetentionSchedule(db, JobQueue(db), settings)
    assert await first.schedule() == await second.schedule()
    assert await db.jobs.count_documents({"kind": RETENTION_JOB}) == 1


@pytest.mark.gen_test(timeout=60)
async def test_the_server_applies_retention_by_itself_and_schedules_the_next_run(db, make_settings):
    settings = make_settings(RETENTION_INTERVAL="1", JOB_RETENTION_DAYS="1", WORKER_POLL_INTERVAL="0.05")
    await db.jobs.insert_one({"_id": "stale", "kind": "x", "status": "done", "finished_at": OLD})
    queue = JobQueue(db)
    schedule = RetentionSchedule(db, queue, settings)
    workers = [Worker(queue, poll_interval=0.05) for _ in range(2)]  # two processes' workers
    for worker in workers:
        worker.register(RETENTION_JOB, schedule.run)
        worker.start()
    try:
        await schedule.schedule()
        await schedule.schedule()
        done = await eventually(lambda: db.jobs.find_one({"kind": RETENTION_JOB, "status": "done"}))
        assert await db.jobs.find_one({"_id": "stale"}) is None
        assert done is not None and done["result"]["deleted"]["jobs"] >= 1
        following = {"kind": RETENTION_JOB, "payload.slot": {"$gt": done["payload"]["slot"]}}
        assert await eventually(lambda: db.jobs.find_one(following))
        assert (
            await db.jobs.count_documents({"kind": RETENTION_JOB, "payload.slot": done["payload"]["slot"]})
            == 1
        )
    finally:
        for worker in workers:
            await worker.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_started_server_has_its_next_retention_run_queued(services):
    job = await services.db.jobs.find_one({"kind": RETENTION_JOB})
    assert job is not None and job["status"] == "queued"
    assert RETENTION_JOB in services.notifications.worker.handlers
