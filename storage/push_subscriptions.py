"""Web Push subscriptions per user (``push_subscriptions``), and the deployment's VAPID key.

A subscription is identified by its endpoint URL (unique): subscribing again from the same browser
replaces the keys and owner. The VAPID key lives in ``server_state`` so every process signs with
the same key; the first process to start creates it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from storage.mongo import Database, find_in


async def create_indexes(db: Database) -> None:
    await db.push_subscriptions.create_index([("user_id", ASCENDING)])


def subscription_id(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()[:32]


class PushSubscriptions:
    def __init__(self, db: Database) -> None:
        self.subs = db.push_subscriptions
        self.state = db.server_state

    async def add(self, user_id: str, endpoint: str, p256dh: str, auth: str) -> str:
        sid = subscription_id(endpoint)
        await self.subs.update_one(
            {"_id": sid},
            {
                "$set": {"user_id": user_id, "endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}},
                "$setOnInsert": {"created_at": dt.datetime.now(dt.UTC)},
            },
            upsert=True,
        )
        return sid

    async def remove(self, endpoint: str, user_id: str | None = None) -> bool:
        query: dict[str, Any] = {"_id": subscription_id(endpoint)}
        if user_id is not None:
            query["user_id"] = user_id
        return (await self.subs.delete_one(query)).deleted_count == 1

    async def for_users(self, user_ids: list[str]) -> list[dict[str, Any]]:
        return await find_in(self.subs, "user_id", user_ids)

    async def by_ids(self, ids: list[str]) -> list[dict[str, Any]]:
        return await self.subs.find({"_id": {"$in": ids}}).to_list()

    async def shared_secret(self, name: str, create: Any) -> str:
        """The deployment-wide value ``name``; the first caller stores ``create()``, the rest read it."""
        doc = await self.state.find_one({"_id": name})
        if doc is None:
            try:
                await self.state.insert_one({"_id": name, "value": create()})
            except DuplicateKeyError:
                pass  # another process won the race; use its value
            doc = await self.state.find_one({"_id": name})
        assert doc is not None
        return str(doc["value"])
