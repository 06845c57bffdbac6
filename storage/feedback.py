"""Attendees' ratings of a webinar: one per attendee (its ``_id`` is webinar and user), for reports."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from storage.accounts import now
from storage.errors import conflict
from storage.mongo import Database


async def create_indexes(db: Database) -> None:
    await db.feedback.create_index([("webinar_id", ASCENDING), ("created_at", ASCENDING)])


class Feedback:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self, webinar_id: str, user_id: str, name: str, rating: int, comment: str
    ) -> dict[str, Any]:
        """Store a rating; 409 ``already_rated`` when this user rated this webinar before (the
        unique ``_id`` decides, so two processes racing store one)."""
        doc = {
            "_id": f"{webinar_id}:{user_id}",
            "webinar_id": webinar_id,
            "user_id": user_id,
            "name": name,
            "rating": rating,
            "comment": comment,
            "created_at": now(),
        }
        try:
            await self.db.feedback.insert_one(doc)
        except DuplicateKeyError:
            raise conflict("already_rated", "you have rated this webinar already") from None
        return doc

    async def of_user(self, webinar_id: str, user_id: str) -> dict[str, Any] | None:
        return await self.db.feedback.find_one({"_id": f"{webinar_id}:{user_id}"})

    async def list(self, webinar_id: str) -> list[dict[str, Any]]:
        return (
            await self.db.feedback.find({"webinar_id": webinar_id})
            .sort("created_at", ASCENDING)
            .to_list(None)
        )
