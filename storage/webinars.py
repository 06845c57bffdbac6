"""Webinars: the durable record and its lifecycle (who holds which role is the domain's rule:
``realtime/webinars/service.py``).

Lifecycle: ``scheduled`` -> ``live`` -> ``ended``; ``scheduled`` -> ``cancelled``. Every transition is
one conditional update on the current status, so two hosts pressing "go live" at once produce one
``live`` and one 409.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument

from storage.accounts import new_id, now
from storage.batch import Batcher
from storage.errors import Kind, Refused, conflict, not_found
from storage.mongo import Database


async def create_indexes(db: Database) -> None:
    await db.webinars.create_index([("owner_id", ASCENDING), ("starts_at", DESCENDING)])
    await db.webinars.create_index([("cohost_ids", ASCENDING)])


class Webinars:
    def __init__(self, db: Database) -> None:
        self.db = db
        # every join reads its webinar: the reads of a join storm share queries (never a cache)
        self._by_id: Batcher[str, dict[str, Any] | None] = Batcher(self._find_many, missing=None)

    async def create(self, owner_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        doc = {
            "_id": new_id(),
            "owner_id": owner_id,
            "status": "scheduled",
            "seats_taken": 0,
            "description": "",
            "capacity": 0,
            "seats_left": 0,
            "registration_mode": "open",
            "stream_url": "",
            "slow_mode_seconds": 0,
            "qa_moderation": False,
            "cohost_ids": [],
            "cohost_emails": [],
            "panelist_ids": [],
            "panelist_emails": [],
            "created_at": now(),
            **fields,
        }
        doc["seats_left"] = doc["capacity"]
        await self.db.webinars.insert_one(doc)
        return doc

    async def find(self, webinar_id: str) -> dict[str, Any] | None:
        doc = await self._by_id.get(webinar_id)
        return dict(doc) if doc is not None else None  # each caller its own copy

    async def _find_many(self, ids: list[str]) -> dict[str, dict[str, Any] | None]:
        return {doc["_id"]: doc async for doc in self.db.webinars.find({"_id": {"$in": ids}})}

    async def get(self, webinar_id: str) -> dict[str, Any]:
        """The webinar; ``not_found`` when there is none."""
        doc = await self.find(webinar_id)
        if doc is None:
            raise not_found("webinar")
        return doc

    async def list_for(self, user_id: str) -> list[dict[str, Any]]:
        cursor = self.db.webinars.find({"$or": [{"owner_id": user_id}, {"cohost_ids": user_id}]})
        return await cursor.sort("starts_at", ASCENDING).to_list(500)

    async def update(self, webinar_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Edit a webinar that has not ended or been cancelled."""
        query: dict[str, Any] = {"_id": webinar_id, "status": {"$in": ["scheduled", "live"]}}
        change: dict[str, Any] = {"$set": fields}
        if "starts_at" in fields or "duration_minutes" in fields:
            change["$inc"] = {"ics_sequence": 1}  # calendars that imported the event move it
        if "capacity" in fields:
            # seats_left moves with capacity in the same conditional update, so a concurrent
            # registration either sees the old capacity or the new one, never a mix.
            current = await self.get(webinar_id)
            if fields["capacity"] and fields["capacity"] < current["seats_taken"]:
                raise conflict(
                    "capacity_below_registrations",
                    f"{current['seats_taken']} seats are taken; capacity cannot go below",
                )
            query["capacity"] = current["capacity"]
            query["seats_taken"] = current["seats_taken"]
            fields["seats_left"] = fields["capacity"] - current["seats_taken"] if fields["capacity"] else 0
        doc = await self.db.webinars.find_one_and_update(query, change, return_document=ReturnDocument.AFTER)
        if doc is None:
            current = await self.get(webinar_id)
            if "capacity" in fields and current["status"] in ("scheduled", "live"):
                raise conflict("concurrent_registration", "seats changed while editing; try again")
            await self._refuse(webinar_id, "edit")
        assert doc is not None
        return doc

    async def set_recording(self, webinar_id: str, url: str) -> None:
        """Store the URL of the webinar's recording (any status: recordings come after the end)."""
        result = await self.db.webinars.update_one({"_id": webinar_id}, {"$set": {"recording_url": url}})
        if result.matched_count == 0:
            raise not_found("webinar")

    async def transition(self, webinar_id: str, source: str, target: str) -> dict[str, Any]:
        stamp = {"live": "live_at", "ended": "ended_at", "cancelled": "cancelled_at"}[target]
        doc = await self.db.webinars.find_one_and_update(
            {"_id": webinar_id, "status": source},
            {"$set": {"status": target, stamp: now()}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            await self._refuse(webinar_id, target)
        assert doc is not None
        return doc

    async def _refuse(self, webinar_id: str, action: str) -> None:
        current = await self.get(webinar_id)
        status = current["status"]
        codes = {"live": "already_live", "ended": "webinar_ended", "cancelled": "webinar_cancelled"}
        code = codes.get(status, "not_live")
        raise Refused(Kind.CONFLICT, code, f"cannot {action}: the webinar is {status}")

    async def take_seat(self, webinar_id: str) -> bool:
        """Atomically take one seat if any is left (capacity 0 means unlimited). Never over-fills."""
        limited = await self.db.webinars.update_one(
            {"_id": webinar_id, "capacity": {"$gt": 0}, "seats_left": {"$gt": 0}},
            {"$inc": {"seats_taken": 1, "seats_left": -1}},
        )
        if limited.modified_count == 1:
            return True
        unlimited = await self.db.webinars.update_one(
            {"_id": webinar_id, "capacity": 0}, {"$inc": {"seats_taken": 1}}
        )
        return unlimited.modified_count == 1

    async def release_seat(self, webinar_id: str) -> None:
        await self.db.webinars.update_one(
            {"_id": webinar_id, "seats_taken": {"$gt": 0}}, {"$inc": {"seats_taken": -1, "seats_left": 1}}
        )
