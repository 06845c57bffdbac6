"""The notification inbox: one document per user per notification, in ``notifications``.

Every notification carries a ``key`` unique per user (the caller's idempotency key, else a random
one), so inserting the same notification twice (a retried job, two processes racing) stores it once;
``insert_many`` returns only the documents it actually inserted, and only those are published live.
A marker in ``notification_batches`` records that a batch's live messages went out, so a retry
after a crash between storing and publishing knows to publish what the dead attempt stored.
Listing is newest first with an opaque cursor (the last id seen).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from storage.mongo import Database, each_group, find_in

DUPLICATE_KEY = 11000
FILTERS = ("all", "unread", "archived")


async def create_indexes(db: Database) -> None:
    await db.notifications.create_index([("user_id", ASCENDING), ("_id", DESCENDING)])
    await db.notifications.create_index([("user_id", ASCENDING), ("key", ASCENDING)], unique=True)
    await db.notifications.create_index(
        [("user_id", ASCENDING), ("read_at", ASCENDING), ("archived_at", ASCENDING)]
    )
    await db.notification_batches.create_index("at", expireAfterSeconds=30 * 86400)


def object_id(value: str) -> ObjectId | None:
    try:
        return ObjectId(value)
    except (InvalidId, TypeError):
        return None


class Inbox:
    def __init__(self, db: Database) -> None:
        self.items = db.notifications
        self.batches = db.notification_batches

    async def insert_many(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store ``docs`` (each with ``user_id`` and ``key``); return the ones that were new, in order."""
        if not docs:
            return []
        for doc in docs:
            doc.setdefault("_id", ObjectId())
            doc.setdefault("read_at", None)
            doc.setdefault("archived_at", None)
        try:
            await self.items.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            skipped = {e["index"] for e in errors}
            return [doc for i, doc in enumerate(docs) if i not in skipped]
        return docs

    async def existing(self, key: str, user_ids: list[str]) -> list[dict[str, Any]]:
        """The items with ``key`` of ``user_ids`` (what an earlier attempt stored)."""
        return await find_in(self.items, "user_id", user_ids, {"key": key})

    async def batch_published(self, batch_key: str) -> bool:
        return await self.batches.find_one({"_id": batch_key}) is not None

    async def mark_batch_published(self, batch_key: str) -> None:
        """One small write per batch (not one update per item: per-item flags doubled the fan-out)."""
        try:
            await self.batches.insert_one({"_id": batch_key, "at": _now()})
        except DuplicateKeyError:
            pass

    async def page(
        self, user_id: str, *, filter: str = "all", cursor: str | None = None, limit: int = 20
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page, newest first, and the cursor of the next page (None at the end).

        ``all`` is every item not archived, ``unread`` the unread ones not archived, ``archived``
        the archived ones."""
        query: dict[str, Any] = {"user_id": user_id}
        if filter == "archived":
            query["archived_at"] = {"$ne": None}
        else:
            query["archived_at"] = None
            if filter == "unread":
                query["read_at"] = None
        if cursor:
            oid = object_id(cursor)
            if oid is None:
                raise ValueError("bad cursor")
            query["_id"] = {"$lt": oid}
        docs = await self.items.find(query).sort("_id", DESCENDING).limit(limit + 1).to_list()
        more = len(docs) > limit
        docs = docs[:limit]
        return docs, (str(docs[-1]["_id"]) if more and docs else None)

    async def unread_count(self, user_id: str) -> int:
        return await self.items.count_documents({"user_id": user_id, "read_at": None, "archived_at": None})

    async def unread_counts(self, user_ids: list[str]) -> dict[str, int]:
        """Unread counts of many users, one aggregation per ``IN_GROUP``; users with none are 0."""

        async def group(part: list[str]) -> list[dict[str, Any]]:
            pipeline: list[dict[str, Any]] = [
                {"$match": {"user_id": {"$in": part}, "read_at": None, "archived_at": None}},
                {"$group": {"_id": "$user_id", "n": {"$sum": 1}}},
            ]
            return await (await self.items.aggregate(pipeline)).to_list(None)

        counts: dict[str, int] = dict.fromkeys(user_ids, 0)
        for rows in await each_group(user_ids, group):
            counts.update({row["_id"]: int(row["n"]) for row in rows})
        return counts

    async def get(self, user_id: str, item_id: str) -> dict[str, Any] | None:
        oid = object_id(item_id)
        if oid is None:
            return None
        return await self.items.find_one({"_id": oid, "user_id": user_id})

    async def set_read(self, user_id: str, item_id: str, read: bool) -> dict[str, Any] | None:
        """Mark one item read or unread; the item, or None when it is not this user's."""
        return await self._set(user_id, item_id, {"read_at": _now() if read else None})

    async def archive(self, user_id: str, item_id: str, archived: bool = True) -> dict[str, Any] | None:
        return await self._set(user_id, item_id, {"archived_at": _now() if archived else None})

    async def mark_all_read(self, user_id: str) -> int:
        res = await self.items.update_many(
            {"user_id": user_id, "read_at": None, "archived_at": None}, {"$set": {"read_at": _now()}}
        )
        return res.modified_count

    async def _set(self, user_id: str, item_id: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        oid = object_id(item_id)
        if oid is None:
            return None
        await self.items.update_one({"_id": oid, "user_id": user_id}, {"$set": fields})
        return await self.items.find_one({"_id": oid, "user_id": user_id})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
