"""Attendance: one session per joined room subscription (joined_at, left_at, whether the webinar was
live), from which reports derive time in the room and presence while live.

Written behind: a join or a leave is recorded in this process at once and written with the others
of the last ``flush_interval`` seconds (one ``insert_many`` and one ``bulk_write``), not one round
trip each, so 5,000 joins at a webinar's start cost a handful of writes. :meth:`close` (the server's
shutdown, after its connections have left) writes what is left, so a graceful stop loses nothing; a
crash loses at most the last interval. Reads through this object (reports) write this process's
pending records first; another process's appear within its interval. A failed write is retried at
the next interval; at most ``MAX_PENDING`` records wait (the oldest are dropped past it, logged).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.errors import BulkWriteError, PyMongoError

from storage.accounts import new_id, now
from storage.cancellation import raise_if_cancelling
from storage.mongo import Database

STAFF_ROLES = ("host", "cohost", "panelist")  # reports count the audience, not the speakers

log = logging.getLogger("storage.attendance")

FLUSH_INTERVAL = 1.0
MAX_PENDING = 100_000
DUPLICATE_KEY = 11000


async def create_indexes(db: Database) -> None:
    await db.attendance.create_index([("webinar_id", ASCENDING), ("joined_at", ASCENDING)])
    await db.attendance.create_index([("webinar_id", ASCENDING), ("user_id", ASCENDING)])


class Attendance:
    def __init__(self, db: Database, *, flush_interval: float = FLUSH_INTERVAL) -> None:
        self.db = db
        self.flush_interval = flush_interval
        self._inserts: dict[str, dict[str, Any]] = {}  # session id -> its document, not yet written
        self._closes: dict[str, datetime] = {}  # session id (written or being written) -> left_at
        # (webinar_id, user_id) -> the sessions this process opened and has not closed, oldest first
        self._open: dict[tuple[str, str], collections.deque[str]] = {}
        self._lock = asyncio.Lock()  # one write at a time: a session's insert lands before its close
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    async def join(self, webinar_id: str, user_id: str, name: str, live: bool, role: str = "attendee") -> str:
        """Open a session; ``role`` (``host``, ``cohost``, ``panelist``, ``attendee``) lets reports leave
        the speakers out."""
        session = new_id()
        t = now()
        self._inserts[session] = {
            "_id": session,
            "webinar_id": webinar_id,
            "user_id": user_id,
            "name": name,
            "joined_at": t,
            "left_at": None,
            "live": live,
            "role": role,
            "created_at": t,
        }
        self._open.setdefault((webinar_id, user_id), collections.deque()).append(session)
        self._bound()
        if self._closed:  # after close (a late cleanup): at once
            await self.flush()
        else:
            self._start()
        return session

    async def leave(self, webinar_id: str, user_id: str) -> None:
        """Close this user's oldest open session in the webinar (this process's, else any)."""
        sessions = self._open.get((webinar_id, user_id))
        if not sessions:
            await self.db.attendance.find_one_and_update(
                {"webinar_id": webinar_id, "user_id": user_id, "left_at": None},
                {"$set": {"left_at": now()}},
                sort=[("joined_at", ASCENDING)],
            )
            return
        session = sessions.popleft()
        if not sessions:
            del self._open[(webinar_id, user_id)]
        pending = self._inserts.get(session)
        if pending is not None:
            pending["left_at"] = now()  # not written yet: written closed
        else:
            self._closes[session] = now()
        if self._closed:
            await self.flush()

    async def flush(self) -> None:
        """Write every pending join and leave (one ``insert_many``, one ``bulk_write``); what fails
        stays pending for the next flush."""
        async with self._lock:
            inserts, self._inserts = self._inserts, {}
            closes, self._closes = self._closes, {}
            try:
                if inserts:
                    await self.db.attendance.insert_many(list(inserts.values()), ordered=False)
                    inserts = {}
            except BulkWriteError as exc:
                docs = list(inserts.values())
                errors = exc.details.get("writeErrors", [])
                failed = {e["index"] for e in errors if e.get("code") != DUPLICATE_KEY}  # duplicate: written
                inserts = {d["_id"]: d for i, d in enumerate(docs) if i in failed}
                log.warning("attendance: %d session writes failed, retried later", len(inserts))
            except PyMongoError:
                log.warning("attendance: %d session writes failed, retried", len(inserts), exc_info=True)
            for session in list(closes):  # a session not written yet is written closed
                if session in inserts:
                    inserts[session]["left_at"] = closes.pop(session)
            try:
                if closes:
                    await self.db.attendance.bulk_write(
                        [UpdateOne({"_id": s}, {"$set": {"left_at": t}}) for s, t in closes.items()],
                        ordered=False,
                    )
                    closes = {}
            except PyMongoError:
                log.warning("attendance: %d session closes failed, retried later", len(closes), exc_info=True)
            # what failed goes back in front of what arrived meanwhile
            self._inserts = {**inserts, **self._inserts}
            self._closes = {**closes, **self._closes}
            self._bound()

    async def close(self) -> None:
        """Stop the periodic writes and write what is pending; later records are written at once."""
        self._closed = True
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
            self._flusher = None
        await self.flush()

    def _start(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - the next interval tries again
                raise_if_cancelling()
                log.warning("attendance flush failed", exc_info=True)

    def _bound(self) -> None:
        excess = len(self._inserts) + len(self._closes) - MAX_PENDING
        if excess > 0:
            for key in list(self._inserts)[:excess]:
                del self._inserts[key]
            log.error("attendance: %d unwritten session records dropped (the database is failing)", excess)

    async def sessions(self, webinar_id: str) -> list[dict[str, Any]]:
        """The attendees' sessions in join order; hosts' and co-hosts' sessions are left out."""
        await self.flush()
        return (
            await self.db.attendance.find(_attendees(webinar_id)).sort("joined_at", ASCENDING).to_list(None)
        )

    async def attendee_count(self, webinar_id: str) -> int:
        """How many distinct attendees (never hosts or co-hosts) ever joined the webinar's room."""
        await self.flush()
        return len(await self.db.attendance.distinct("user_id", _attendees(webinar_id)))


def _attendees(webinar_id: str) -> dict[str, Any]:
    # sessions written before roles were recorded have no ``role`` and count as attendees
    return {"webinar_id": webinar_id, "role": {"$nin": list(STAFF_ROLES)}}


def seconds_between(start: datetime, end: datetime | None, fallback: datetime) -> float:
    return max(0.0, ((end or fallback) - start).total_seconds())
