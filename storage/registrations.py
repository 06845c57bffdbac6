"""Registrations: one per email per webinar, seats never over-filled, an approval queue.

Statuses: ``approved`` (holds a seat), ``pending`` (host-approved mode, no seat yet), ``rejected``,
``cancelled``. A seat is taken by the webinar's conditional update *before* the registration is
written and given back if the write loses the unique (webinar_id, email) race, so 50 concurrent
sign-ups for 10 seats leave exactly 10.
"""

from __future__ import annotations

import re
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from storage.accounts import new_id, now
from storage.batch import Batcher, UserKey, by_webinar
from storage.errors import conflict, not_found
from storage.mongo import Database, find_in
from storage.webinars import Webinars


async def create_indexes(db: Database) -> None:
    await db.registrations.create_index([("webinar_id", ASCENDING), ("email", ASCENDING)], unique=True)
    await db.registrations.create_index([("webinar_id", ASCENDING), ("user_id", ASCENDING)])


class Registrations:
    def __init__(self, db: Database, webinars: Webinars) -> None:
        self.db = db
        self.webinars = webinars
        # (webinar_id, user_id) -> that user's registrations there: read twice on every join
        # (admission, and the join link's cancellation); concurrent reads share one query
        self._of_user: Batcher[UserKey, list[dict[str, Any]]] = Batcher(self._find_of_users, missing=[])

    async def _find_of_users(self, keys: list[UserKey]) -> dict[UserKey, list[dict[str, Any]]]:
        found: dict[UserKey, list[dict[str, Any]]] = {}
        for webinar_id, ids in by_webinar(keys).items():
            for doc in await find_in(self.db.registrations, "user_id", ids, {"webinar_id": webinar_id}):
                found.setdefault((webinar_id, doc["user_id"]), []).append(doc)
        return found

    async def register(
        self, webinar: dict[str, Any], user_id: str, email: str, name: str, *, timezone: str | None = None
    ) -> dict[str, Any]:
        """A new registration (``approved`` with a seat in open mode, else ``pending``), or a cancelled
        one revived; 409 ``webinar_full`` or ``already_registered``."""
        wid = webinar["_id"]
        approved = webinar["registration_mode"] == "open"
        if approved and not await self.webinars.take_seat(wid):
            raise conflict("webinar_full", "the webinar is full")
        status = "approved" if approved else "pending"
        doc = {
            "_id": new_id(),
            "webinar_id": wid,
            "user_id": user_id,
            "email": email,
            "name": name,
            "status": status,
            "timezone": timezone,
            "created_at": now(),
        }
        try:
            await self.db.registrations.insert_one(doc)
            return doc
        except DuplicateKeyError:
            pass
        # This email registered before: revive a cancelled registration, refuse anything else.
        revived = await self.db.registrations.find_one_and_update(
            {"webinar_id": wid, "email": email, "status": "cancelled"},
            {"$set": {"status": status, "name": name, "timezone": timezone, "created_at": now()}},
            return_document=ReturnDocument.AFTER,
        )
        if revived is not None:
            return revived
        if approved:
            await self.webinars.release_seat(wid)
        raise conflict("already_registered", "this email is already registered for the webinar")

    async def get(self, webinar_id: str, registration_id: str) -> dict[str, Any]:
        doc = await self.db.registrations.find_one({"_id": registration_id, "webinar_id": webinar_id})
        if doc is None:
            raise not_found("registration")
        return doc

    async def of_user(self, webinar_id: str, user_id: str) -> dict[str, Any] | None:
        """The user's approved registration for the webinar, or None."""
        docs = await self._of_user.get((webinar_id, user_id))
        return next((dict(d) for d in docs if d["status"] == "approved"), None)

    async def link_ended(self, webinar_id: str, user_id: str, issued_at: float) -> bool:
        """Whether a join token of ``user_id`` for ``webinar_id`` issued at ``issued_at`` was ended by
        a cancel: the registration is cancelled, or was cancelled after the token was issued and
        registered again since (the new link works, the old one stays ended). One indexed query,
        shared with the lookups asked for at the same time."""
        docs = await self._of_user.get((webinar_id, user_id))
        if not docs:
            return False
        doc = docs[0]
        cancelled_at = doc.get("cancelled_at")
        return doc["status"] == "cancelled" or (
            cancelled_at is not None and issued_at < cancelled_at.timestamp()
        )

    async def decide(self, webinar_id: str, registration_id: str, approve: bool) -> dict[str, Any]:
        """Approve (taking a seat) or reject a pending registration."""
        reg = await self.get(webinar_id, registration_id)
        if reg["status"] != "pending":
            raise conflict("not_pending", f"the registration is {reg['status']}, not pending")
        if approve and not await self.webinars.take_seat(webinar_id):
            raise conflict("webinar_full", "the webinar is full")
        target = "approved" if approve else "rejected"
        doc = await self.db.registrations.find_one_and_update(
            {"_id": registration_id, "status": "pending"},
            {"$set": {"status": target, "decided_at": now()}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            if approve:
                await self.webinars.release_seat(webinar_id)
            raise conflict("not_pending", "the registration was decided concurrently")
        return doc

    async def cancel(self, webinar_id: str, registration_id: str) -> dict[str, Any]:
        reg = await self.get(webinar_id, registration_id)
        doc = await self.db.registrations.find_one_and_update(
            {"_id": registration_id, "status": {"$in": ["approved", "pending"]}},
            {"$set": {"status": "cancelled", "cancelled_at": now()}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise conflict("not_active", f"the registration is {reg['status']}")
        if reg["status"] == "approved":
            await self.webinars.release_seat(webinar_id)
        return doc

    async def search(
        self, webinar_id: str, q: str | None = None, status: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"webinar_id": webinar_id}
        if status:
            query["status"] = status
        if q:
            pattern = re.escape(q)
            query["$or"] = [
                {"email": {"$regex": pattern, "$options": "i"}},
                {"name": {"$regex": pattern, "$options": "i"}},
            ]
        return await self.db.registrations.find(query).sort("created_at", ASCENDING).to_list(limit)

    async def approved(self, webinar_id: str) -> list[dict[str, Any]]:
        return await self.search(webinar_id, status="approved", limit=100_000)

    async def of_users(self, webinar_id: str, user_ids: list[str]) -> list[dict[str, Any]]:
        """The registrations of ``user_ids`` for the webinar, whatever their status."""
        return await find_in(self.db.registrations, "user_id", user_ids, {"webinar_id": webinar_id})

    async def approved_of_users(self, webinar_id: str, user_ids: list[str]) -> list[dict[str, Any]]:
        return [r for r in await self.of_users(webinar_id, user_ids) if r.get("status") == "approved"]

    async def by_email(self, webinar_id: str, email: str) -> dict[str, Any] | None:
        return await self.db.registrations.find_one({"webinar_id": webinar_id, "email": email})

    async def approved_user_ids(self, webinar_id: str) -> list[str]:
        """User ids of the webinar's approved registrations (registrations without a user skipped)."""
        cursor = self.db.registrations.find({"webinar_id": webinar_id, "status": "approved"}, {"user_id": 1})
        return [doc["user_id"] async for doc in cursor if doc.get("user_id")]
