"""Durable state of a live room: chat and its pace, questions, hands, announcements (polls and
attendance are in storage/polls.py and storage/attendance.py, moderation flags in
storage/moderation.py).

Every document carries ``webinar_id``; ids are strings. Rules that must hold across processes (one
vote per person, one upvote per person, bans, slow mode) are enforced by MongoDB (unique indexes and
conditional updates), never by process memory. The rules themselves (how many messages, who may
act) are the webinar domain's; this module offers the atomic operations they need.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from storage.accounts import new_id, now
from storage.attendance import Attendance
from storage.batch import Batcher, UserKey, by_webinar
from storage.errors import conflict, forbidden, not_found
from storage.feedback import Feedback
from storage.moderation import Moderation
from storage.mongo import Database, find_in, insert_fresh
from storage.polls import Polls

OWN_QUESTIONS = 200  # a participant's own questions in their snapshot


async def create_indexes(db: Database) -> None:
    for name in ("chat", "questions", "announcements"):
        await db[name].create_index([("webinar_id", ASCENDING), ("created_at", ASCENDING)])
    await db.hands.create_index([("webinar_id", ASCENDING), ("raised_at", ASCENDING)])
    await db.chat_windows.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)


class Room:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.polls = Polls(db)
        self.attendance = Attendance(db)
        self.feedback = Feedback(db)
        self.moderation = Moderation(db)
        # a participant's own state, read by every joiner's snapshot (``me``): concurrent joins share
        # one query per webinar (storage/batch.py; never a cache)
        self._hands: Batcher[UserKey, bool] = Batcher(self._find_hands, missing=False)
        self._own_questions: Batcher[UserKey, list[dict[str, Any]]] = Batcher(self._find_own, missing=[])
        self._upvoted: Batcher[UserKey, list[str]] = Batcher(self._find_upvoted, missing=[])

    # chat pace: atomic primitives; the rule (slow mode, N messages per window) is the chat domain's

    async def take_turn(self, webinar_id: str, user_id: str, gap: int) -> bool:
        """Record a chat send now unless this user's previous recorded one is under ``gap`` seconds
        old; True when recorded. One conditional update (or the first insert, racing on the unique
        ``_id``), so of two processes sending at once exactly one records the turn."""
        t = now()
        key = {"_id": f"slow:{webinar_id}:{user_id}"}
        expires = t + timedelta(seconds=gap + 60)
        taken = await self.db.chat_windows.find_one_and_update(
            {**key, "last_at": {"$lte": t - timedelta(seconds=gap)}},
            {"$set": {"last_at": t, "expires_at": expires}},
        )
        if taken is not None:
            return True
        try:
            await self.db.chat_windows.insert_one({**key, "last_at": t, "expires_at": expires})
        except DuplicateKeyError:
            return False
        return True

    async def last_turn(self, webinar_id: str, user_id: str) -> datetime | None:
        """When this user's last recorded slow-mode turn was taken; None when there is none."""
        doc = await self.db.chat_windows.find_one({"_id": f"slow:{webinar_id}:{user_id}"})
        return doc["last_at"] if doc else None

    async def recent_sends(self, webinar_id: str, user_id: str, keep: int, ttl: float) -> list[datetime]:
        """Record a chat send now and return the newest ``keep`` send times, oldest first. One atomic
        ``$push`` with ``$sort`` and ``$slice``, so concurrent sends on every process all count, the
        newest are kept by time even when processes' writes arrive out of order, and the record stays
        small; it expires ``ttl`` seconds after the last send."""
        t = now()
        doc = await self.db.chat_windows.find_one_and_update(
            {"_id": f"rate:{webinar_id}:{user_id}"},
            {
                "$push": {"at": {"$each": [t], "$sort": 1, "$slice": -keep}},
                "$set": {"expires_at": t + timedelta(seconds=ttl)},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        return list(doc["at"]) if doc is not None else [t]

    # chat --------------------------------------------------------------------------------------

    async def add_chat(
        self, webinar_id: str, user_id: str, name: str, text: str, role: str = "attendee"
    ) -> dict[str, Any]:
        """Store a message; ``role`` is the sender's in the webinar (``host``, ``cohost``, ``panelist``,
        ``attendee``)."""
        doc = {
            "_id": new_id(),
            "webinar_id": webinar_id,
            "user_id": user_id,
            "name": name,
            "role": role,
            "text": text,
            "deleted": False,
            "created_at": now(),
        }
        await insert_fresh(self.db.chat, doc)
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
        await insert_fresh(self.db.questions, doc)
        return doc

    async def question(self, webinar_id: str, question_id: str) -> dict[str, Any]:
        doc = await self.db.questions.find_one({"_id": question_id, "webinar_id": webinar_id})
        if doc is None:
            raise not_found("question")
        return doc

    async def upvote(self, webinar_id: str, question_id: str, user_id: str) -> dict[str, Any]:
        """One upvote per person, never on one's own question (409 ``own_question``)."""
        doc = await self.db.questions.find_one_and_update(
            {
                "_id": question_id,
                "webinar_id": webinar_id,
                "user_id": {"$ne": user_id},
                "voters": {"$ne": user_id},
                "approved": True,
            },
            {"$push": {"voters": user_id}, "$inc": {"votes": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            q = await self.question(webinar_id, question_id)
            if q["user_id"] == user_id:
                raise conflict("own_question", "you cannot upvote your own question")
            raise conflict("already_voted", "you have already upvoted this question")
        return doc

    async def withdraw_question(self, webinar_id: str, question_id: str, user_id: str) -> dict[str, Any]:
        """The author takes back an open question (answered or dismissed ones stay): 403
        ``forbidden`` for someone else's, 409 ``question_closed`` for one no longer open."""
        doc = await self.db.questions.find_one_and_update(
            {"_id": question_id, "webinar_id": webinar_id, "user_id": user_id, "status": "open"},
            {"$set": {"status": "withdrawn", "pinned": False}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            q = await self.question(webinar_id, question_id)
            if q["user_id"] != user_id:
                raise forbidden("you can only withdraw your own question")
            raise conflict("question_closed", f"the question is {q['status']}")
        return doc

    async def questions_of(self, webinar_id: str, user_id: str) -> list[dict[str, Any]]:
        """``user_id``'s own questions in every state (pending approval included), oldest first
        (at most ``OWN_QUESTIONS``)."""
        return [dict(q) for q in await self._own_questions.get((webinar_id, user_id))]

    async def _find_own(self, keys: list[UserKey]) -> dict[UserKey, list[dict[str, Any]]]:
        found: dict[UserKey, list[dict[str, Any]]] = {}
        for webinar_id, ids in by_webinar(keys).items():
            questions = await find_in(self.db.questions, "user_id", ids, {"webinar_id": webinar_id})
            for q in sorted(questions, key=lambda q: q["created_at"]):
                own = found.setdefault((webinar_id, q["user_id"]), [])
                if len(own) < OWN_QUESTIONS:
                    own.append(q)
        return found

    async def upvoted_by(self, webinar_id: str, user_id: str) -> list[str]:
        """Ids of the questions ``user_id`` upvoted."""
        return list(await self._upvoted.get((webinar_id, user_id)))

    async def _find_upvoted(self, keys: list[UserKey]) -> dict[UserKey, list[str]]:
        found: dict[UserKey, list[str]] = {}
        for webinar_id, ids in by_webinar(keys).items():
            wanted = set(ids)
            # a question two groups both match comes back twice: count it once
            matched = await find_in(
                self.db.questions, "voters", ids, {"webinar_id": webinar_id}, {"voters": 1}
            )
            for q in {q["_id"]: q for q in matched}.values():
                for voter in wanted.intersection(q["voters"]):
                    found.setdefault((webinar_id, voter), []).append(q["_id"])
        return found

    async def update_question(
        self, webinar_id: str, question_id: str, fields: dict[str, Any], *, unpin_others: bool = False
    ) -> dict[str, Any]:
        if unpin_others:
            await self.db.questions.update_many(
                {"webinar_id": webinar_id, "pinned": True}, {"$set": {"pinned": False}}
            )
        doc = await self.db.questions.find_one_and_update(
            {"_id": question_id, "webinar_id": webinar_id, "status": {"$ne": "withdrawn"}},
            {"$set": fields},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            await self.question(webinar_id, question_id)
            raise conflict("question_withdrawn", "its author withdrew this question")
        return doc

    async def pinned_question(self, webinar_id: str) -> dict[str, Any] | None:
        """The approved question pinned in the room, if any."""
        return await self.db.questions.find_one({"webinar_id": webinar_id, "pinned": True, "approved": True})

    async def pending_questions(self, webinar_id: str, limit: int = 500) -> list[dict[str, Any]]:
        """Questions awaiting a host's approval (pre-approval mode)."""
        return await self.db.questions.find({"webinar_id": webinar_id, "approved": False}).to_list(limit)

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
        # a withdrawn question is gone for everyone; a dismissed one stays in the hosts' view
        query["status"] = {"$nin": ["withdrawn"] if include_dismissed else ["withdrawn", "dismissed"]}
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

    async def hand_raised(self, webinar_id: str, user_id: str) -> bool:
        return await self._hands.get((webinar_id, user_id))

    async def _find_hands(self, keys: list[UserKey]) -> dict[UserKey, bool]:
        ids = [f"{webinar_id}:{user_id}" for webinar_id, user_id in keys]
        raised = {doc["_id"] for doc in await find_in(self.db.hands, "_id", ids, projection={"_id": 1})}
        return {key: True for key, id_ in zip(keys, ids, strict=True) if id_ in raised}

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
        await insert_fresh(self.db.announcements, doc)
        return doc

    async def active_announcement(self, webinar_id: str, audience: str = "room") -> dict[str, Any] | None:
        return await self.db.announcements.find_one(
            {"webinar_id": webinar_id, "audience": audience, "active": True}
        )

    async def recent_announcements(
        self, webinar_id: str, audience: str = "room", limit: int = 5
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` announcements to ``audience``, newest first."""
        cursor = self.db.announcements.find({"webinar_id": webinar_id, "audience": audience})
        return await cursor.sort("created_at", DESCENDING).to_list(limit)

    # counts and engagement --------------------------------------------------------------------

    async def chat_count(self, webinar_id: str, *, include_deleted: bool = True) -> int:
        query: dict[str, Any] = {"webinar_id": webinar_id}
        if not include_deleted:
            query["deleted"] = False
        return await self.db.chat.count_documents(query)

    async def question_count(self, webinar_id: str, *, approved_only: bool = False) -> int:
        query: dict[str, Any] = {"webinar_id": webinar_id}
        if approved_only:
            query["approved"] = True
        return await self.db.questions.count_documents(query)

    async def add_reactions(self, webinar_id: str, n: int) -> None:
        """Add ``n`` to the webinar's reaction total (one ``$inc``, shared by every process)."""
        await self.db.engagement.update_one(
            {"_id": f"{webinar_id}:reactions"},
            {"$inc": {"n": n}, "$set": {"webinar_id": webinar_id}},
            upsert=True,
        )

    async def reactions_total(self, webinar_id: str) -> int:
        doc = await self.db.engagement.find_one({"_id": f"{webinar_id}:reactions"})
        return int(doc["n"]) if doc else 0
