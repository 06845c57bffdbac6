"""Single-use, short-lived tickets that authenticate an EventSource (which cannot send headers)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from storage.errors import Kind, Refused
from storage.mongo import Database, insert_fresh

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
        await insert_fresh(self._coll, {"_id": _digest(ticket), "claims": claims, "expires": expires})
        return ticket

    async def redeem(self, ticket: str) -> dict[str, Any]:
        """The claims the ticket was issued for, once; else 401 ``ticket_invalid``, saying whether
        it is unknown or used, or how long ago it expired."""
        doc = None
        if isinstance(ticket, str) and 8 <= len(ticket) <= 100:
            doc = await self._coll.find_one_and_delete({"_id": _digest(ticket)})
        if doc is None:
            raise Refused(Kind.UNAUTHORIZED, "ticket_invalid", "unknown or used ticket; get a new one")
        late = (dt.datetime.now(dt.UTC) - doc["expires"]).total_seconds()
        if late > 0:
            raise Refused(
                Kind.UNAUTHORIZED,
                "ticket_invalid",
                f"the ticket expired {late:.0f} s ago (a ticket lasts {TICKET_TTL} s); get a new one",
            )
        return dict(doc["claims"])
