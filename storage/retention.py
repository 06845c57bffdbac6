"""Retention: deleting what is older than its configured number of days, in batches.

What each setting covers (0 days keeps it forever):

- ``room_history_days``: a webinar room's durable timeline (``history`` of its ``room:`` and
  ``backstage:`` channels, by message time) and its chat messages, questions and announcements (by
  creation time). The channels' sequence counters stay, so a seq is never reused.
- ``inbox_days``: notifications in users' inboxes, read or not (by creation time, from the id).
- ``attendance_days``: attendance sessions (by join time).
- ``finished_job_days``: background jobs that are done, failed or cancelled (by finish time), and
  with them their idempotency keys.

Deletion goes in batches of ``BATCH`` ids (each batch one query and one ``delete_many``), so a large
backlog never holds the database in one long operation. MongoDB TTL indexes are not used: SecantusDB
supports them, but its sweeper decodes every document of a TTL collection once a minute, and a TTL
index cannot express "0 keeps forever" or the room's channel prefixes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.collection import AsyncCollection

from storage.jobs import CANCELLED, DONE, FAILED
from storage.mongo import Database

BATCH = 1000
ROOM_CHANNELS = "^(room|backstage):"


@dataclass(frozen=True)
class Policy:
    room_history_days: int = 0
    inbox_days: int = 0
    attendance_days: int = 0
    finished_job_days: int = 0


def _cutoff(now: dt.datetime, days: int) -> dt.datetime:
    return now - dt.timedelta(days=days)


async def delete_in_batches(collection: AsyncCollection[dict[str, Any]], query: dict[str, Any]) -> int:
    """Delete every document matching ``query``, ``BATCH`` at a time; the number deleted."""
    deleted = 0
    while True:
        ids = [doc["_id"] async for doc in collection.find(query, {"_id": 1}).limit(BATCH)]
        if not ids:
            return deleted
        result = await collection.delete_many({"_id": {"$in": ids}})
        deleted += result.deleted_count
        if len(ids) < BATCH:
            return deleted
        await asyncio.sleep(0)  # let the process's other work run between batches


async def apply(db: Database, policy: Policy, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Delete what ``policy`` no longer keeps; how many documents went, by kind (a kind whose
    setting is 0 is absent)."""
    t = now or dt.datetime.now(dt.UTC)
    counts: dict[str, int] = {}
    if policy.room_history_days:
        cutoff = _cutoff(t, policy.room_history_days)
        ms = int(cutoff.timestamp() * 1000)
        counts["room_history"] = await delete_in_batches(
            db.history, {"c": {"$regex": ROOM_CHANNELS}, "ts": {"$lt": ms}}
        )
        for name in ("chat", "questions", "announcements"):
            counts[name] = await delete_in_batches(db[name], {"created_at": {"$lt": cutoff}})
    if policy.inbox_days:
        oldest_kept = ObjectId.from_datetime(_cutoff(t, policy.inbox_days))
        counts["inbox"] = await delete_in_batches(db.notifications, {"_id": {"$lt": oldest_kept}})
    if policy.attendance_days:
        cutoff = _cutoff(t, policy.attendance_days)
        counts["attendance"] = await delete_in_batches(db.attendance, {"joined_at": {"$lt": cutoff}})
    if policy.finished_job_days:
        cutoff = _cutoff(t, policy.finished_job_days)
        finished = {"status": {"$in": [DONE, FAILED, CANCELLED]}, "finished_at": {"$lt": cutoff}}
        counts["jobs"] = await delete_in_batches(db.jobs, finished)
    return counts
