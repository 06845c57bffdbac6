"""Attendance: one session per joined room subscription (joined_at, left_at, whether the webinar was
live), from which reports derive time in the room and presence while live."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from storage.accounts import new_id, now
from storage.mongo import Database

STAFF_ROLES = ("host", "cohost")


async def create_indexes(db: Database) -> None:
    await db.attendance.create_index([("webinar_id", ASCENDING), ("joined_at", ASCENDING)])
    await db.attendance.create_index([("webinar_id", ASCENDING), ("user_id", ASCENDING)])


class Attendance:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def join(self, webinar_id: str, user_id: str, name: str, live: bool, role: str = "attendee") -> str:
        """Open a session; ``role`` (``host``, ``cohost``, ``attendee``) lets reports leave staff out."""
        session = new_id()
        await self.db.attendance.insert_one(
            {
                "_id": session,
                "webinar_id": webinar_id,
                "user_id": user_id,
                "name": name,
                "joined_at": now(),
                "left_at": None,
                "live": live,
                "role": role,
                "created_at": now(),
            }
        )
        return session

    async def leave(self, webinar_id: str, user_id: str) -> None:
        """Close this user's oldest open session in the webinar."""
        await self.db.attendance.find_one_and_update(
            {"webinar_id": webinar_id, "user_id": user_id, "left_at": None},
            {"$set": {"left_at": now()}},
            sort=[("joined_at", ASCENDING)],
        )

    async def sessions(self, webinar_id: str) -> list[dict[str, Any]]:
        """The attendees' sessions in join order; hosts' and co-hosts' sessions are left out."""
        return (
            await self.db.attendance.find(_attendees(webinar_id)).sort("joined_at", ASCENDING).to_list(None)
        )

    async def attendee_count(self, webinar_id: str) -> int:
        """How many distinct attendees (never hosts or co-hosts) ever joined the webinar's room."""
        return len(await self.db.attendance.distinct("user_id", _attendees(webinar_id)))


def _attendees(webinar_id: str) -> dict[str, Any]:
    # sessions written before roles were recorded have no ``role`` and count as attendees
    return {"webinar_id": webinar_id, "role": {"$nin": list(STAFF_ROLES)}}


def seconds_between(start: datetime, end: datetime | None, fallback: datetime) -> float:
    return max(0.0, ((end or fallback) - start).total_seconds())
