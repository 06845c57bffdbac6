"""Moderation flags of one user in one webinar (``muted``, ``banned``), one document per pair.

Durable in MongoDB, so a ban holds across reconnects, tabs and processes. What a flag forbids is the
webinar domain's rule (``WebinarService.participant`` and ``active_participant``)."""

from __future__ import annotations

from typing import Any

from storage.accounts import now
from storage.batch import Batcher
from storage.mongo import Database


class Moderation:
    def __init__(self, db: Database) -> None:
        self.db = db
        # read on every join: concurrent reads share one query, each sent after its read was asked
        # for, so a ban written before a join's check is always seen (storage/batch.py)
        self._by_id: Batcher[str, dict[str, Any]] = Batcher(self._find_many, missing={})

    async def flags(self, webinar_id: str, user_id: str) -> dict[str, bool]:
        """``{"muted": bool, "banned": bool}``; both False for a user never moderated."""
        doc = await self._by_id.get(f"{webinar_id}:{user_id}")
        return {"muted": bool(doc.get("muted")), "banned": bool(doc.get("banned"))}

    async def _find_many(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        return {doc["_id"]: doc async for doc in self.db.moderation.find({"_id": {"$in": ids}})}

    async def set(self, webinar_id: str, user_id: str, **flags: bool) -> None:
        await self.db.moderation.update_one(
            {"_id": f"{webinar_id}:{user_id}"},
            {"$set": {**flags, "webinar_id": webinar_id, "user_id": user_id, "at": now()}},
            upsert=True,
        )

    async def flagged(self, webinar_id: str, limit: int = 1000) -> list[dict[str, object]]:
        """The users of ``webinar_id`` muted or banned now (at most ``limit``), latest first."""
        out: list[dict[str, object]] = []
        async for doc in self.db.moderation.find({"webinar_id": webinar_id}).sort("at", -1):
            if doc.get("muted") or doc.get("banned"):
                out.append(
                    {
                        "user_id": doc["user_id"],
                        "muted": bool(doc.get("muted")),
                        "banned": bool(doc.get("banned")),
                    }
                )
                if len(out) >= limit:
                    break
        return out
