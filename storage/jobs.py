"""The durable background job queue, on MongoDB leases.

A job is a document in ``jobs``: ``kind``, ``payload``, ``status`` (``queued``, ``running``,
``done``, ``failed``, ``cancelled``), ``run_at``, ``lease_until``, ``lease_owner``, ``attempts``
and an optional idempotency ``key`` (unique). Contract:

- ``enqueue`` with a ``key`` is idempotent: a second enqueue with the same key returns the first job.
- ``claim`` hands a due job to exactly one caller across every process (one atomic
  ``find_one_and_update``), under a lease. A job whose lease expired (its process died) is claimable
  again, so a job runs at least once; handlers make the effect idempotent (the notification inbox
  has a unique key per user) so that the effect happens once.
- Only the lease owner can ``complete``/``fail``/``extend`` a job; a worker that lost its lease
  (paused past expiry) cannot overwrite the new owner's result.
- Finished jobs (done, failed, cancelled) are deleted ``JOB_RETENTION_DAYS`` (default 14) after
  they finished, by retention (storage/retention.py); with them go their keys, so a key guards
  against repeats that long (the inbox key, as long as the inbox entry is kept).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from storage.mongo import Database

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def create_indexes(db: Database) -> None:
    await db.jobs.create_index([("status", ASCENDING), ("run_at", ASCENDING)])
    await db.jobs.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
    await db.jobs.create_index("key", unique=True, partialFilterExpression={"key": {"$type": "string"}})
    await db.jobs.create_index([("kind", ASCENDING), ("payload.webinar_id", ASCENDING)])
    # Retention deletes finished jobs by finish time. Earlier versions did it with a fixed two-week
    # TTL index on the same key, which would override the setting: it is replaced.
    legacy = (await db.jobs.index_information()).get("finished_at_1", {})
    if "expireAfterSeconds" in legacy:
        await db.jobs.drop_index("finished_at_1")
    await db.jobs.create_index("finished_at")


class LeaseLost(Exception):
    """Raised by a handler that found its job's lease taken: another worker runs the job now."""


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    key: str | None
    owner: str

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Job:
        return cls(
            id=str(doc["_id"]),
            kind=doc["kind"],
            payload=doc.get("payload") or {},
            attempts=int(doc.get("attempts", 0)),
            key=doc.get("key"),
            owner=doc.get("lease_owner", ""),
        )


class JobQueue:
    def __init__(self, db: Database, *, max_attempts: int = 5) -> None:
        self.jobs = db.jobs
        self.max_attempts = max_attempts
        self.on_enqueue: Callable[[], None] | None = None  # this process's worker polls at once

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        run_at: dt.datetime | None = None,
        key: str | None = None,
        max_attempts: int | None = None,
    ) -> str:
        """Queue a job to run at ``run_at`` (None: now); with ``key``, at most one job per key."""
        t = now()
        doc: dict[str, Any] = {
            "_id": secrets.token_hex(12),
            "kind": kind,
            "payload": payload,
            "status": QUEUED,
            "run_at": run_at or t,
            "lease_until": None,
            "lease_owner": None,
            "attempts": 0,
            "max_attempts": max_attempts or self.max_attempts,
            "created_at": t,
            "updated_at": t,
        }
        if key is None:
            await self.jobs.insert_one(doc)
            self._wake(doc["run_at"])
            return str(doc["_id"])
        # The key comes from the filter on insert. Processes that start together queue the same keyed
        # job at once: the upsert that loses the race raises DuplicateKeyError (MongoDB) or answers
        # no document (SecantusDB); either way the winner's job is there to be read.
        for _ in range(3):
            try:
                found = await self.jobs.find_one_and_update(
                    {"key": key},
                    {"$setOnInsert": doc},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                    projection={"_id": 1},
                )
            except DuplicateKeyError:
                found = None
            if found is None:
                found = await self.jobs.find_one({"key": key}, {"_id": 1})
            if found is not None:
                self._wake(doc["run_at"])
                return str(found["_id"])
        raise RuntimeError(f"job key {key!r}: neither queued nor found after three attempts")

    def _wake(self, run_at: dt.datetime) -> None:
        if self.on_enqueue is not None and run_at <= now():
            self.on_enqueue()

    async def claim(
        self,
        owner: str,
        lease_seconds: float,
        *,
        kinds: Collection[str] | None = None,
        skip: Collection[str] = (),
    ) -> Job | None:
        """The oldest due job, leased to ``owner`` until now + ``lease_seconds``; None when idle.
        ``kinds``: only jobs of these kinds; ``skip``: none of these (a process that leaves them to
        another, e.g. the mail process)."""
        t = now()
        due: dict[str, Any] = {
            "$or": [
                {"status": QUEUED, "run_at": {"$lte": t}},
                {"status": RUNNING, "lease_until": {"$lt": t}},
            ]
        }
        if kinds is not None:
            due["kind"] = {"$in": sorted(kinds)}
        elif skip:
            due["kind"] = {"$nin": sorted(skip)}
        doc = await self.jobs.find_one_and_update(
            due,
            {
                "$set": {
                    "status": RUNNING,
                    "lease_owner": owner,
                    "lease_until": t + dt.timedelta(seconds=lease_seconds),
                    "updated_at": t,
                },
                "$inc": {"attempts": 1},
            },
            sort=[("run_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )
        return Job.from_doc(doc) if doc else None

    async def extend(self, job: Job, lease_seconds: float) -> bool:
        """Renew the lease; False when this owner lost it."""
        t = now()
        result = await self.jobs.update_one(
            {"_id": job.id, "lease_owner": job.owner, "status": RUNNING},
            {"$set": {"lease_until": t + dt.timedelta(seconds=lease_seconds), "updated_at": t}},
        )
        return result.modified_count == 1

    async def complete(self, job: Job, result: dict[str, Any] | None = None) -> bool:
        t = now()
        res = await self.jobs.update_one(
            {"_id": job.id, "lease_owner": job.owner, "status": RUNNING},
            {
                "$set": {
                    "status": DONE,
                    "result": result or {},
                    "lease_until": None,
                    "updated_at": t,
                    "finished_at": t,
                }
            },
        )
        return res.modified_count == 1

    async def fail(self, job: Job, error: str, *, retry_in: float | None = None) -> bool:
        """Record a failure; requeue after ``retry_in`` seconds (default: exponential backoff) until
        the job's ``max_attempts`` is used up, then mark it ``failed``."""
        t = now()
        doc = await self.jobs.find_one({"_id": job.id}, {"max_attempts": 1})
        limit = int((doc or {}).get("max_attempts", self.max_attempts))
        update: dict[str, Any] = {"last_error": error[:500], "lease_until": None, "updated_at": t}
        if job.attempts >= limit:
            update.update(status=FAILED, finished_at=t)
        else:
            delay = retry_in if retry_in is not None else min(2.0**job.attempts, 300.0)
            update.update(status=QUEUED, run_at=t + dt.timedelta(seconds=delay))
        res = await self.jobs.update_one(
            {"_id": job.id, "lease_owner": job.owner, "status": RUNNING}, {"$set": update}
        )
        return res.modified_count == 1

    async def cancel(self, query: dict[str, Any]) -> int:
        """Cancel every queued job matching ``query`` (running ones finish)."""
        res = await self.jobs.update_many(
            {**query, "status": QUEUED},
            {"$set": {"status": CANCELLED, "updated_at": now(), "finished_at": now()}},
        )
        return res.modified_count

    async def requeue(self, key: str, run_at: dt.datetime, payload: dict[str, Any]) -> bool:
        """Bring a cancelled job with ``key`` back (a webinar moved back to a time it had before)."""
        res = await self.jobs.update_one(
            {"key": key, "status": CANCELLED},
            {
                "$set": {"status": QUEUED, "run_at": run_at, "payload": payload, "updated_at": now()},
                "$unset": {"finished_at": ""},
            },
        )
        return res.modified_count == 1

    async def backlog(self) -> tuple[int, float]:
        """How many queued jobs are due now, and how many seconds the longest-waiting one has waited
        (0.0 when none is due)."""
        t = now()
        due = {"status": QUEUED, "run_at": {"$lte": t}}
        count = await self.jobs.count_documents(due)
        oldest = await self.jobs.find_one(due, {"run_at": 1}, sort=[("run_at", ASCENDING)]) if count else None
        return count, (t - oldest["run_at"]).total_seconds() if oldest else 0.0

    async def get(self, job_id: str) -> dict[str, Any] | None:
        return await self.jobs.find_one({"_id": job_id})
