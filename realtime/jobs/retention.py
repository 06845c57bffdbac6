"""The server applies retention (storage/retention.py) every ``RETENTION_INTERVAL`` seconds.

Time is cut into slots of that length; each slot has one job in the queue, keyed by the slot's
number, due at the slot's end. Every process schedules the coming slot at start-up and the job,
when it runs, schedules the next one before it deletes anything, so with several processes (or
workers) each run happens once, on whichever process claims it, and a run that fails is retried
by the queue without breaking the chain.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from config import Settings
from storage import retention
from storage.jobs import Job, JobQueue
from storage.mongo import Database

log = logging.getLogger("realtime.jobs.retention")

RETENTION_JOB = "retention"


def policy_of(settings: Settings) -> retention.Policy:
    return retention.Policy(
        room_history_days=settings.room_history_retention_days,
        inbox_days=settings.inbox_retention_days,
        attendance_days=settings.attendance_retention_days,
        finished_job_days=settings.job_retention_days,
    )


class RetentionSchedule:
    def __init__(self, db: Database, queue: JobQueue, settings: Settings) -> None:
        self.db = db
        self.queue = queue
        self.policy = policy_of(settings)
        self.interval = settings.retention_interval

    async def schedule(self, after: float | None = None) -> str:
        """Queue the run at the end of the slot holding ``after`` (default now); idempotent."""
        slot = int((time.time() if after is None else after) // self.interval)
        run_at = dt.datetime.fromtimestamp((slot + 1) * self.interval, dt.UTC)
        return await self.queue.enqueue(RETENTION_JOB, {"slot": slot}, run_at=run_at, key=self._key(slot))

    def _key(self, slot: int) -> str:
        # The interval is part of the key: slot numbers of another interval never meet a finished job.
        return f"retention:{self.interval:g}:{slot}"

    async def run(self, job: Job) -> dict[str, Any]:
        slot = int(job.payload.get("slot", 0))
        await self.schedule(after=max((slot + 1) * self.interval, time.time()))
        counts = await retention.apply(self.db, self.policy)
        if any(counts.values()):
            log.info("retention deleted %s", counts)
        return {"deleted": counts}
