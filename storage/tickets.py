"""Single-use, short-lived tickets that authenticate an EventSource (which cannot send headers)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from storage.mongo import Database

TICKET_TTL = 60


async def create_indexes(db: Database) -> None:
    await db.sse_tickets.create_index("expires", expireAfterSeconds=0)


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class Tickets:
    def __init__(self, db: Database) -> None:
        self._coll = db.sse_tickets

    async def issue(self, claims: dict[str, Any]) -> str:
        ticket = secrets.token_urlsafe(24)
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=TICKET_TTL)
        await self._coll.insert_one({"_id": _digest(ticket), "claims": claims, "expires": expires})
        return ticket

    async def redeem(self, ticket: str) -> dict[str, Any] | None:
        """The claims the ticket was issued for, once; None if unknown, used or expired."""
        if not isinstance(ticket, str) or not 8 <= len(ticket) <= 100:
            return None
        doc = await self._coll.find_one_and_delete({"_id": _digest(ticket)})
        if doc is None or doc["expires"] < dt.datetime.now(dt.UTC):
            return None
        return dict(doc["claims"])
