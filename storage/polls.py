"""Polls and their votes: one vote per person by a unique (poll_id, user_id) index, counts kept on
the poll document by ``$inc`` so every process sees the same totals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from storage.accounts import new_id, now
from storage.batch import Batcher, UserKey, by_webinar
from storage.errors import Kind, Refused, conflict, not_found
from storage.mongo import Database, find_in, insert_fresh

MAX_POLLS = 1000  # listed per webinar
PollDocs = list[dict[str, Any]]  # (``Polls.list`` hides the builtin inside the class)


def _created(doc: dict[str, Any]) -> Any:
    return doc["created_at"]


async def create_indexes(db: Database) -> None:
    await db.polls.create_index([("webinar_id", ASCENDING), ("created_at", ASCENDING)])
    await db.poll_votes.create_index([("poll_id", ASCENDING), ("user_id", ASCENDING)], unique=True)
    await db.poll_votes.create_index([("webinar_id", ASCENDING)])


class Polls:
    def __init__(self, db: Database) -> None:
        self.db = db
        # read by every joiner's snapshot: concurrent joins share one query (never a cache)
        self._lists: Batcher[str, PollDocs] = Batcher(self._find_lists, missing=[])
        self._votes: Batcher[UserKey, dict[str, list[str]]] = Batcher(self._find_votes, missing={})

    async def add(self, webinar_id: str, question: str, options: list[str], multiple: bool) -> dict[str, Any]:
        doc = {
            "_id": new_id(),
            "webinar_id": webinar_id,
            "question": question,
            "multiple": multiple,
            "options": [{"id": str(i), "text": t} for i, t in enumerate(options)],
            "counts": {str(i): 0 for i in range(len(options))},
            "voters": 0,
            "status": "draft",
            "show_results": False,
            "created_at": now(),
        }
        await insert_fresh(self.db.polls, doc)
        return doc

    async def get(self, webinar_id: str, poll_id: str) -> dict[str, Any]:
        doc = await self.db.polls.find_one({"_id": poll_id, "webinar_id": webinar_id})
        if doc is None:
            raise not_found("poll")
        return doc

    async def set_status(self, webinar_id: str, poll_id: str, source: str, target: str) -> dict[str, Any]:
        doc = await self.db.polls.find_one_and_update(
            {"_id": poll_id, "webinar_id": webinar_id, "status": source},
            {"$set": {"status": target, f"{target}_at": now()}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            current = await self.get(webinar_id, poll_id)
            raise conflict(f"poll_{current['status']}", f"the poll is {current['status']}")
        return doc

    async def set(self, webinar_id: str, poll_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        doc = await self.db.polls.find_one_and_update(
            {"_id": poll_id, "webinar_id": webinar_id}, {"$set": fields}, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            raise not_found("poll")
        return doc

    async def vote(self, webinar_id: str, poll_id: str, user_id: str, choices: list[str]) -> dict[str, Any]:
        try:
            await self.db.poll_votes.insert_one(
                {
                    "_id": new_id(),
                    "webinar_id": webinar_id,
                    "poll_id": poll_id,
                    "user_id": user_id,
                    "choices": choices,
                    "created_at": now(),
                }
            )
        except DuplicateKeyError:
            # a vote is final: the refusal says which choice was kept, so the page can show it
            kept = await self.db.poll_votes.find_one({"poll_id": poll_id, "user_id": user_id})
            raise Refused(
                Kind.CONFLICT,
                "already_voted",
                "you have already voted in this poll; a vote cannot be changed",
                choices=list(kept["choices"]) if kept else [],
            ) from None
        inc = {f"counts.{c}": 1 for c in choices}
        inc["voters"] = 1
        doc = await self.db.polls.find_one_and_update(
            {"_id": poll_id}, {"$inc": inc}, return_document=ReturnDocument.AFTER
        )
        assert doc is not None
        return doc

    async def votes_of(self, webinar_id: str, user_id: str) -> dict[str, list[str]]:
        """``{poll_id: choices}`` of every vote ``user_id`` cast in the webinar's polls."""
        return dict(await self._votes.get((webinar_id, user_id)))

    async def _find_votes(self, keys: list[UserKey]) -> dict[UserKey, dict[str, list[str]]]:
        found: dict[UserKey, dict[str, list[str]]] = {}
        for webinar_id, ids in by_webinar(keys).items():
            for v in await find_in(self.db.poll_votes, "user_id", ids, {"webinar_id": webinar_id}):
                found.setdefault((webinar_id, v["user_id"]), {})[v["poll_id"]] = list(v["choices"])
        return found

    async def list(self, webinar_id: str) -> list[dict[str, Any]]:
        """The webinar's polls, oldest first (at most ``MAX_POLLS``); each a fresh copy."""
        return [dict(poll) for poll in await self._lists.get(webinar_id)]

    async def _find_lists(self, webinar_ids: Sequence[str]) -> dict[str, PollDocs]:
        found: dict[str, PollDocs] = {}
        for doc in sorted(await find_in(self.db.polls, "webinar_id", webinar_ids), key=_created):
            polls = found.setdefault(doc["webinar_id"], [])
            if len(polls) < MAX_POLLS:
                polls.append(doc)
        return found

    async def vote_count(self, webinar_id: str) -> int:
        """Votes cast in all of the webinar's polls."""
        return await self.db.poll_votes.count_documents({"webinar_id": webinar_id})
