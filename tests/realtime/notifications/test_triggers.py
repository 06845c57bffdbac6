"""The webinar events as the notification triggers handle them, and the reminders, driven job by job
(the worker loop is stopped)."""

import dataclasses
import datetime as dt

import pytest

from realtime.webinars.records import Announcement, Question, Registration, Webinar
from tests.handlers.test_notifications import seed_webinar


class Recorder:
    """The hub's publish API, recorded: a seam inside the process."""

    def __init__(self):
        self.messages = []

    async def publish(self, channel, type, data, *, durable=True):
        self.messages.append((channel, type, data))
        return len(self.messages)

    async def publish_many(self, items, *, durable=True):
        items = list(items)
        self.messages.extend(items)
        return list(range(len(items)))


@pytest.fixture
def notif(io_loop, services):
    n = services.notifications
    io_loop.run_sync(n.worker.close)
    n.notifier.publisher = Recorder()
    return n


async def due_now(db, **query):
    await db.jobs.update_many({**query, "status": "queued"}, {"$set": {"run_at": dt.datetime.now(dt.UTC)}})


async def run_all(worker):
    count = 0
    while await worker.run_one():
        count += 1
    return count


@pytest.mark.gen_test(timeout=30)
async def test_registration_schedules_reminders_that_fire_once(notif, services):
    db = services.db
    webinar = Webinar.from_doc(await seed_webinar(db, "w1", ["ann", "bob"]))
    reg = Registration.from_doc(await db.registrations.find_one({"user_id": "ann"}))
    await notif.triggers.registration_received(webinar, reg)
    await notif.triggers.registration_received(webinar, reg)  # a repeated event changes nothing
    reminders = await db.jobs.find({"kind": "reminder"}).sort("run_at", 1).to_list()
    offsets = [j["payload"]["offset"] for j in reminders]
    assert offsets == [1440, 15]
    assert reminders[0]["run_at"] == webinar.starts_at - dt.timedelta(minutes=1440)
    assert await db.notifications.count_documents({"user_id": "ann", "category": "registration"}) == 1

    # Bob cancels his registration before the reminder fires: he is not reminded.
    await db.registrations.update_one({"user_id": "bob"}, {"$set": {"status": "cancelled"}})
    await due_now(db, kind="reminder", **{"payload.offset": 1440})
    assert await run_all(notif.worker) == 1
    assert await db.notifications.count_documents({"category": "reminder"}) == 1
    item = await db.notifications.find_one({"category": "reminder"})
    assert item["user_id"] == "ann" and item["title"] == "Launch starts in 1 day"
    live = [
        m
        for m in notif.notifier.publisher.messages
        if m[1] == "notification" and m[2]["category"] == "reminder"
    ]
    assert [m[0] for m in live] == ["user:ann"]

    # The job ran exactly once; running it again (a retry after a crash) stores nothing new.
    job = await db.jobs.find_one({"kind": "reminder", "payload.offset": 1440})
    assert job["status"] == "done" and job["attempts"] == 1
    await db.jobs.update_one({"_id": job["_id"]}, {"$set": {"status": "queued"}})
    assert await run_all(notif.worker) == 1
    assert await db.notifications.count_documents({"category": "reminder"}) == 1


@pytest.mark.gen_test(timeout=30)
async def test_reschedule_moves_reminders_and_cancel_drops_them(notif, services):
    db = services.db
    webinar = Webinar.from_doc(await seed_webinar(db, "w2", ["ann"]))
    await notif.triggers.schedule_reminders(webinar)
    moved = dataclasses.replace(webinar, starts_at=webinar.starts_at + dt.timedelta(hours=3))
    await db.webinars.update_one({"_id": "w2"}, {"$set": {"starts_at": moved.starts_at}})
    await notif.triggers.webinar_rescheduled(moved)
    queued = await db.jobs.find({"kind": "reminder", "status": "queued"}).to_list()
    assert {j["run_at"] for j in queued} == {
        moved.starts_at - dt.timedelta(minutes=1440),
        moved.starts_at - dt.timedelta(minutes=15),
    }
    assert await db.jobs.count_documents({"kind": "reminder", "status": "cancelled"}) == 2
    await run_all(notif.worker)  # the "rescheduled" fan-out
    assert await db.notifications.count_documents({"user_id": "ann", "title": {"$regex": "rescheduled"}}) == 1

    # A stale reminder (the webinar moved after it was queued) is skipped when it fires.
    await db.webinars.update_one({"_id": "w2"}, {"$set": {"starts_at": webinar.starts_at}})
    await due_now(db, kind="reminder")
    await run_all(notif.worker)
    assert await db.notifications.count_documents({"category": "reminder"}) == 0

    await notif.triggers.webinar_rescheduled(webinar)  # back to the first time: the old jobs come back
    assert await db.jobs.count_documents({"kind": "reminder", "status": "queued"}) == 2
    await notif.triggers.webinar_cancelled(dataclasses.replace(webinar, status="cancelled"))
    assert await db.jobs.count_documents({"kind": "reminder", "status": "queued"}) == 0
    await run_all(notif.worker)
    assert await db.notifications.count_documents({"user_id": "ann", "title": {"$regex": "cancelled"}}) == 1


@pytest.mark.gen_test(timeout=30)
async def test_live_announcement_and_answer_events(notif, services):
    db = services.db
    webinar = Webinar.from_doc(await seed_webinar(db, "w3", ["ann", "bob"]))
    await notif.triggers.webinar_live(webinar)
    await notif.triggers.webinar_live(webinar)  # the same event twice
    await notif.triggers.announcement_made(webinar, Announcement("a1", "w3", "Q&A in 5 minutes", "room"))
    question = Question("q1", "w3", "bob", "Bob", "Why?", anonymous=True, status="answered", answer=None)
    await notif.triggers.question_answered(webinar, question)
    await run_all(notif.worker)
    counts = {
        c: await db.notifications.count_documents({"category": c}) for c in ("live", "announcement", "qa")
    }
    assert counts == {"live": 2, "announcement": 2, "qa": 1}
    qa = await db.notifications.find_one({"category": "qa"})
    assert qa["user_id"] == "bob" and qa["webinar_id"] == "w3"


class CrashingPublisher(Recorder):
    """The process dies after storing the items, before publishing them."""

    def __init__(self):
        super().__init__()
        self.crash = True

    async def publish_many(self, items, *, durable=True):
        if self.crash:
            self.crash = False
            raise ConnectionError("died before publishing")
        return await super().publish_many(items, durable=durable)


@pytest.mark.gen_test(timeout=30)
async def test_retry_publishes_what_a_crashed_attempt_stored_once(notif, services):
    notifier = notif.notifier
    notifier.publisher = CrashingPublisher()
    with pytest.raises(ConnectionError):
        await notifier.notify(["ann", "bob"], "general", "t", "b", "/", None, "ev-9")
    assert await services.db.notifications.count_documents({"key": "ev-9"}) == 2
    assert await notifier.notify(["ann", "bob", "cy"], "general", "t", "b", "/", None, "ev-9") == 1
    assert await notifier.notify(["ann", "bob", "cy"], "general", "t", "b", "/", None, "ev-9") == 0
    sent = [m[0] for m in notifier.publisher.messages]
    assert sorted(sent) == ["user:ann", "user:bob", "user:cy"]  # each once, none lost
