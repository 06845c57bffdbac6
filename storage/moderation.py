"""Moderation flags of one user in one webinar (``muted``, ``banned``), one document per pair.

Durable in MongoDB, so a ban holds across reconnects, tabs and processes. What a flag forbids is the
webinar domain's rule (``WebinarService.participant`` and ``active_participant``)."""

from __future__ import annotations

from storage.accounts import now
from storage.mongo import Database


class Moderation:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def flags(self, webinar_id: str, user_id: str) -> dict[str, bool]:
        """``{"muted": bool, "banned": bool}``; both False for a user never moderated."""
        doc = await self.db.moderation.find_one({"_id": f"{webinar_id}:{user_id}"})
        doc = doc or {}
        return {"muted": bool(doc.get("muted")), "banned": bool(doc.get("banned"))}

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
