"""Outgoing email: the messages, and the addresses that cannot receive any.

``mail`` holds one document per message and recipient: ``key`` (unique: the notification's
idempotency key and the recipient, so a retried fan-out stores a message once), ``batch`` (the send
job that carries it), ``to``, ``user_id``, ``category``, ``subject``, ``raw`` (the
whole RFC 5322 message as sent; ``text`` and ``html`` only for the development mailbox), ``status``
and ``transport``. Statuses:

- ``queued``: waiting for its batch's send job (an SMTP server that is down keeps it here);
- ``sent``: the SMTP server accepted it, or the development mailbox kept it (``transport``);
- ``undeliverable``: the server answered 5xx for the recipient; the address is then suppressed;
- ``failed``: refused for another reason, or still failing after the last attempt.

``mail_undeliverable`` holds one document per suppressed address (``_id``: the address in lower
case, with the SMTP code and reply): no mail goes to it again, and hosts see it in the registrant list.
Sent messages are removed ``KEEP_SECONDS`` after they were queued; their keys go with them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError

from storage.mongo import Database, find_in, update_in

QUEUED, SENT, UNDELIVERABLE, FAILED = "queued", "sent", "undeliverable", "failed"
KEEP_SECONDS = 30 * 86400


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def create_indexes(db: Database) -> None:
    await db.mail.create_index("key", unique=True)
    await db.mail.create_index([("batch", ASCENDING), ("status", ASCENDING)])
    await db.mail.create_index([("transport", ASCENDING), ("created_at", DESCENDING)])
    await db.mail.create_index("created_at", expireAfterSeconds=KEEP_SECONDS)


class MailStore:
    def __init__(self, db: Database) -> None:
        self.mail = db.mail
        self.undeliverable = db.mail_undeliverable
        self.users = db.users

    async def add(self, docs: list[dict[str, Any]]) -> int:
        """Store new messages (``_id``, ``key``, ``batch``... set by the caller); a message whose key
        is stored already is skipped. Returns how many were new."""
        if not docs:
            return 0
        try:
            result = await self.mail.insert_many(docs, ordered=False)
            return len(result.inserted_ids)
        except BulkWriteError as exc:
            others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != 11000]
            if others:
                raise
            return int(exc.details.get("nInserted", 0))

    async def queued(self, batch: str, limit: int = 10_000) -> list[dict[str, Any]]:
        # Read 200 at a time: a batch is ~5 MB of messages, decoded in one go it held the event loop.
        cursor = self.mail.find({"batch": batch, "status": QUEUED}, {"text": 0, "html": 0}, batch_size=200)
        return await cursor.to_list(limit)

    async def mark(
        self, ids: list[str], status: str, *, transport: str | None = None, error: str | None = None
    ) -> None:
        if not ids:
            return
        change: dict[str, Any] = {"status": status, "updated_at": now()}
        if status == SENT:
            change["sent_at"] = change["updated_at"]
        if transport is not None:
            change["transport"] = transport
        if error is not None:
            change["last_error"] = error[:500]
        await update_in(self.mail, "_id", ids, {"status": QUEUED}, {"$set": change})

    async def note_attempt(self, ids: list[str], error: str) -> None:
        """A try that will be repeated: the messages stay queued, with the reason."""
        if ids:
            change = {"$set": {"last_error": error[:500], "updated_at": now()}, "$inc": {"attempts": 1}}
            await update_in(self.mail, "_id", ids, {"status": QUEUED}, change)

    async def get(self, message_id: str) -> dict[str, Any] | None:
        return await self.mail.find_one({"_id": message_id})

    async def latest(self, transport: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest messages that went by ``transport`` (the development mailbox page)."""
        cursor = self.mail.find({"transport": transport}, {"raw": 0}).sort("created_at", DESCENDING)
        return await cursor.to_list(limit)

    async def addresses(self, user_ids: list[str]) -> dict[str, dict[str, Any]]:
        """``{user_id: {"email", "name"}}`` of the accounts of ``user_ids`` that have an email."""
        found = await find_in(self.users, "_id", user_ids, None, {"email": 1, "name": 1})
        return {str(d["_id"]): d for d in found if d.get("email")}

    # undeliverable addresses -------------------------------------------------------------------

    async def suppress(self, address: str, code: int, reply: str) -> None:
        await self.undeliverable.update_one(
            {"_id": address.lower()},
            {"$set": {"code": code, "reply": reply[:300], "at": now()}},
            upsert=True,
        )

    async def suppressed(self, addresses: Iterable[str]) -> set[str]:
        """Those of ``addresses`` (lower case) that are marked undeliverable."""
        wanted = sorted({a.lower() for a in addresses if a})
        if not wanted:
            return set()
        return {str(doc["_id"]) for doc in await find_in(self.undeliverable, "_id", wanted, None, {"_id": 1})}
