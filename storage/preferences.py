"""Notification preferences per user: per category and delivery method, and muted webinars.

One document per user in ``notification_preferences`` (``_id`` is the user id). A user without a
document, or a category without an entry, gets the defaults: every category on, in-app, Web Push and email.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from storage.mongo import Database, find_in

CATEGORIES = ("registration", "reminder", "live", "announcement", "qa", "recording", "general")
METHODS = ("in_app", "push", "email")


@dataclass
class Preferences:
    user_id: str
    categories: dict[str, dict[str, bool]] = field(default_factory=dict)
    muted_webinars: list[str] = field(default_factory=list)

    def wants(self, category: str, method: str, webinar_id: str | None = None) -> bool:
        """Whether to deliver ``category`` by ``method``; a muted webinar gets nothing at all."""
        if webinar_id is not None and webinar_id in self.muted_webinars:
            return False
        return bool(self.categories.get(category, {}).get(method, True))

    def public(self) -> dict[str, Any]:
        return {
            "categories": {
                c: {m: bool(self.categories.get(c, {}).get(m, True)) for m in METHODS} for c in CATEGORIES
            },
            "muted_webinars": sorted(self.muted_webinars),
        }


class PreferenceStore:
    def __init__(self, db: Database) -> None:
        self.prefs = db.notification_preferences

    async def get(self, user_id: str) -> Preferences:
        return (await self.get_many([user_id]))[user_id]

    async def get_many(self, user_ids: list[str]) -> dict[str, Preferences]:
        """Preferences of many users in one query (defaults for users who never set any)."""
        found = {uid: Preferences(uid) for uid in user_ids}
        for doc in await find_in(self.prefs, "_id", user_ids):
            found[doc["_id"]] = Preferences(
                doc["_id"], doc.get("categories") or {}, list(doc.get("muted_webinars") or [])
            )
        return found

    async def update(self, user_id: str, categories: dict[str, dict[str, bool]]) -> Preferences:
        """Set the given category/method switches; the others keep their values."""
        sets = {
            f"categories.{c}.{m}": bool(v) for c, methods in categories.items() for m, v in methods.items()
        }
        if sets:
            await self.prefs.update_one({"_id": user_id}, {"$set": sets}, upsert=True)
        return await self.get(user_id)

    async def mute(self, user_id: str, webinar_id: str, muted: bool) -> Preferences:
        op = "$addToSet" if muted else "$pull"
        await self.prefs.update_one({"_id": user_id}, {op: {"muted_webinars": webinar_id}}, upsert=True)
        return await self.get(user_id)
