"""Durable state of a live room: chat, moderation, questions, hands, announcements (polls and
attendance are in storage/polls.py and storage/attendance.py).

Every document carries ``webinar_id``; ids are strings. Rules that must hold across processes (one
vote per person, one upvote per person, bans, slow mode) are enforced by MongoDB (unique indexes and
conditional updates), never by process memory.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from storage.accounts import new_id, now
from storage.attendance import Attendance
from storage.errors import Kind, Refused, conflict, not_found
from storage.mongo import Database
from storage.polls import Polls


async def create_indexes(db: Database) -> None:
    for name in ("chat", "questions", "announcements"):
        await db[name].create_index([("webinar_id", ASCENDING), ("created_at", ASCENDING)])
    await db.hands.create_index([("webinar_id", ASCENDING), ("raised_at", ASCENDING)])
    await db.chat_windows.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)


RATE_WINDOW = 10  # seconds; CHAT_RATE counts messages in this window


class Room:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.polls = Polls(db)
        self.attendance = Attendance(db)

    # moderation --------------------------------------------------------------------------------

    async def moderation(self, webinar_id: str, user_id: str) -> dict[str, Any]:
        doc = await self.db.moderation.find_one({"_id": f"{webinar_id}:{user_id}"})
        return doc or {"muted": False, "banned": False}

    async def set_moderation(self, webinar_id: str, user_id: str, **flags: bool) -> None:
        await self.db.moderation.update_one(
            {"_id": f"{webinar_id}:{user_id}"},
            {"$set": {**flags, "webinar_id": webinar_id, "user_id": user_id, "at": now()}},
            upsert=True,
        )

    async def check_chat_pace(self, webinar_id: str, user_id: str, slow_seconds: int, rate: int) -> None:
        """429 ``slow_mode`` or ``rate_limited`` when this user may not send yet (shared by processes)."""
        t = now()
        if slow_seconds:
            key = {"_id": f"slow:{webinar_id}:{user_id}"}
            allowed = await self.db.chat_windows.find_one_and_update(
                {**key, "last_at": {"$lte": t - timedelta(seconds=slow_seconds)}},
                {"$set": {"last_at": t, "expires_at": t + timedelta(seconds=slow_seconds + 60)}},
            )
            if allowed is None:
                try:
                    await self.db.chat_windows.insert_one(
                        {**key, "last_at": t, "expires_at": t + timedelta(seconds=slow_seconds + 60)}
                    )
                except DuplicateKeyError:
                    raise Refused(
                        Kind.RATE_LIMITED, "slow_mode", f"slow mode: one message every {slow_seconds} s"
                    ) from None
        # sliding window: the newest rate + 1 send times are kept; refused if the oldest is recent
        doc = await self.db.chat_windows.find_one_and_update(
            {"_id": f"rate:{webinar_id}:{user_id}"},
            {
                "$push": {"at": {"$each": [t], "$slice": -(rate + 1)}},
                "$set": {"expires_at": t + timedelta(seconds=RATE_WINDOW)},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        sent = doc["at"] if doc is not None else []
        if len(sent) > rate and sent[0] > t - timedelta(seconds=RATE_WINDOW):
            raise Refused(
                Kind.RATE_LIMITED, "rate_limited", f"at most {rate} messages per {RATE_WINDOW} seconds"
            )

    # chat --------------------------------------------------------------------------------------

    async def add_chat(self, webinar_id: str, user_id: str, name: str, text: str) -> dict[str, Any]:
        doc = {
            "_id": new_id(),
            "webinar_id": webinar_id,
            "user_id": user_id,
            "name": name,
            "text": text,
            "deleted": False,
            "created_at": now(),
        }
        await self.db.chat.insert_one(doc)
        return doc

    async def delete_chat(self, webinar_id: str, message_id: str) -> dict[str, Any]:
        doc = await self.db.chat.find_one_and_update(
            {"_id": message_id, "webinar_id": webinar_id},
            {"$set": {"deleted": True}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise not_found("chat message")
        return doc

    # questions ---------------------------------------------------------------------------------

    async def add_question(
        self, webinar_id: str, user_id: str, name: str, text: str, anonymous: bool, approved: bool
    ) -> dict[str, Any]:
        doc = {
            "_id": new_id(),
            "webinar_id": webinar_id,
            "user_id": user_id,
            "name": name,
            "text": text,
            "anonymous": anonymous,
            "approved": approved,
            "status": "open",
            "answer": None,
            "pinned": False,
            "votes": 0,
            "voters": [],
            "created_at": now(),
        }
        await self.db.questions.insert_one(doc)
        return doc

    async def question(self, webinar_id: str, question_id: str) -> dict[str, Any]:
        doc = await self.db.questions.find_one({"_id": question_id, "webinar_id": webinar_id})
        if doc is None:
            raise not_found("question")
        return doc

    async def upvote(self, webinar_id: str, question_id: str, user_id: str) -> dict[str, Any]:
        doc = await self.db.questions.find_one_and_update(
            {"_id": question_id, "webinar_id": webinar_id, "voters": {"$ne": user_id}, "approved": True},
            {"$push": {"voters": user_id}, "$inc": {"votes": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            await self.question(webinar_id, question_id)
            raise conflict("already_voted", "you have already upvoted this question")
        return doc

    async def update_question(
        self, webinar_id: str, question_id: str, fields: dict[str, Any], *, unpin_others: bool = False
    ) -> dict[str, Any]:
        if unpin_others:
            await self.db.questions.update_many(
                {"webinar_id": webinar_id, "pinned": True}, {"$set": {"pinned": False}}
            )
        doc = await self.db.questions.find_one_and_update(
            {"_id": question_id, "webinar_id": webinar_id},
            {"$set": fields},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise not_found("question")
        return doc

    async def questions(
        self,
        webinar_id: str,
        sort: str = "votes",
        *,
        approved_only: bool = True,
        include_dismissed: bool = False,
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"webinar_id": webinar_id}
        if approved_only:
            query["approved"] = True
        if not include_dismissed:
            query["status"] = {"$ne": "dismissed"}
        order = (
            [("votes", DESCENDING), ("created_at", ASCENDING)]
            if sort == "votes"
            else [("created_at", ASCENDING)]
        )
        return await self.db.questions.find(query).sort(order).to_list(5000)

    # hands, announcements ----------------------------------------------------------------------

    async def raise_hand(self, webinar_id: str, user_id: str, name: str) -> bool:
        """True if the hand went up now, False if it was up already."""
        try:
            await self.db.hands.insert_one(
                {
                    "_id": f"{webinar_id}:{user_id}",
                    "webinar_id": webinar_id,
                    "user_id": user_id,
                    "name": name,
                    "raised_at": now(),
                }
            )
        except DuplicateKeyError:
            return False
        return True

    async def lower_hand(self, webinar_id: str, user_id: str) -> bool:
        result = await self.db.hands.delete_one({"_id": f"{webinar_id}:{user_id}"})
        return result.deleted_count == 1

    async def hands(self, webinar_id: str) -> list[dict[str, Any]]:
        return await self.db.hands.find({"webinar_id": webinar_id}).sort("raised_at", ASCENDING).to_list(5000)

    async def add_announcement(
        self, webinar_id: str, user_id: str, text: str, audience: str
    ) -> dict[str, Any]:
        doc = {
            "_id": new_id(),
            "webinar_id": webinar_id,
            "user_id": user_id,
            "text": text,
            "audience": audience,
            "active": True,
            "created_at": now(),
        }
        await self.db.announcements.update_many(
            {"webinar_id": webinar_id, "audience": audience, "active": True}, {"$set": {"active": False}}
        )
        await self.db.announcements.insert_one(doc)
        return doc

    async def active_announcement(self, webinar_id: str, audience: str = "room") -> dict[str, Any] | None:
        return await self.db.announcements.find_one(
            {"webinar_id": webinar_id, "audience": audience, "active": True}
        )

    async def count(self, collection: str, webinar_id: str, **query: Any) -> int:
        return await self.db[collection].count_documents({"webinar_id": webinar_id, **query})
