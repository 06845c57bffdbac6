"""Reports: attendance per registrant, engagement counts, CSV exports and the room timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from realtime.auth.tokens import Claims
from realtime.engine.channels import room
from realtime.engine.hub import Hub
from realtime.schema import read
from realtime.webinars.schemas import NewRating
from realtime.webinars.service import WebinarService, read_history
from realtime.webinars.views import iso, public_poll, public_question, to_csv
from storage.attendance import seconds_between
from storage.errors import conflict, forbidden
from storage.room import Room


def _rating(doc: dict[str, Any]) -> dict[str, Any]:
    return {"rating": doc["rating"], "comment": doc["comment"], "created_at": iso(doc["created_at"])}


class ReportService:
    def __init__(self, webinars: WebinarService, room_store: Room, hub: Hub) -> None:
        self.webinars = webinars
        self.room = room_store
        self.hub = hub

    async def attendance(self, claims: Claims, webinar_id: Any) -> list[dict[str, Any]]:
        """One row per registrant (and per admitted non-registrant who joined; never a host or
        co-host): first join, last leave, time in the room as ``seconds`` (one decimal) and as
        ``minutes`` (seconds / 60 rounded to one decimal, so 69.8 s is 1.2, not 1), and whether
        they were there while the webinar was live."""
        p = await self.webinars.staff(claims, webinar_id)
        w = p.webinar
        sessions = await self.room.attendance.sessions(p.webinar_id)
        regs = await self.webinars.registrations.approved(p.webinar_id)
        rows: dict[str, dict[str, Any]] = {
            r["user_id"]: {
                "user_id": r["user_id"],
                "name": r["name"],
                "email": r["email"],
                "registered": True,
                "joined_at": None,
                "left_at": None,
                "seconds": 0.0,
                "present_live": False,
            }
            for r in regs
        }
        now = datetime.now(UTC)
        live_at, ended_at = w.get("live_at"), w.get("ended_at")
        for s in sessions:
            row = rows.setdefault(
                s["user_id"],
                {
                    "user_id": s["user_id"],
                    "name": s["name"],
                    "email": None,
                    "registered": False,
                    "joined_at": None,
                    "left_at": None,
                    "seconds": 0.0,
                    "present_live": False,
                },
            )
            end = s["left_at"] or ended_at or now
            row["seconds"] += seconds_between(s["joined_at"], s["left_at"], ended_at or now)
            row["joined_at"] = min(filter(None, [row["joined_at"], s["joined_at"]]))
            left = s["left_at"] or ended_at  # None: still in the room of a live webinar
            if left is not None:
                row["left_at"] = max(filter(None, [row["left_at"], left]))
            if live_at and end >= live_at and (ended_at is None or s["joined_at"] <= ended_at):
                row["present_live"] = True
        for row in rows.values():
            row["joined_at"], row["left_at"] = iso(row["joined_at"]), iso(row["left_at"])
            row["minutes"] = round(row["seconds"] / 60, 1)
            row["seconds"] = round(row["seconds"], 1)
        return list(rows.values())

    async def attendance_csv(self, claims: Claims, webinar_id: Any) -> str:
        rows = await self.attendance(claims, webinar_id)
        cols = ["name", "email", "registered", "joined_at", "left_at", "seconds", "minutes", "present_live"]
        return to_csv(cols, [[r[c] for c in cols] for r in rows])

    async def registrants_csv(self, claims: Claims, webinar_id: Any, q: str | None) -> str:
        regs = await self.webinars.registrants(claims, webinar_id, q, None)
        cols = ["name", "email", "status", "created_at"]
        return to_csv(cols, [[r["name"], r["email"], r["status"], iso(r["created_at"])] for r in regs])

    async def engagement(self, claims: Claims, webinar_id: Any) -> dict[str, Any]:
        p = await self.webinars.staff(claims, webinar_id)
        wid = p.webinar_id
        return {
            "chat_messages": await self.room.chat_count(wid),
            "questions": await self.room.question_count(wid),
            "question_upvotes": sum(
                q["votes"]
                for q in await self.room.questions(wid, approved_only=False, include_dismissed=True)
            ),
            "poll_votes": await self.room.polls.vote_count(wid),
            "reactions": await self.room.reactions_total(wid),
            "registrants": p.webinar["seats_taken"],
            "attendees": await self.room.attendance.attendee_count(wid),
        }

    async def rate(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        """An attendee's rating, once per attendee (409 ``already_rated``), while live or after the
        end; hosts and co-hosts do not rate their own webinar (403)."""
        body = read(NewRating, params)
        p = await self.webinars.active_participant(claims, webinar_id)
        if p.staff:
            raise forbidden("hosts do not rate their own webinar")
        if p.webinar["status"] not in ("live", "ended"):
            raise conflict("not_live", "a webinar can be rated once it has started")
        doc = await self.room.feedback.add(p.webinar_id, p.user_id, p.name, body.rating, body.comment)
        return _rating(doc)

    async def my_rating(self, claims: Claims, webinar_id: Any) -> dict[str, Any]:
        p = await self.webinars.participant(claims, webinar_id)
        doc = await self.room.feedback.of_user(p.webinar_id, p.user_id)
        return {"rating": _rating(doc) if doc else None}

    async def feedback(self, claims: Claims, webinar_id: Any) -> dict[str, Any]:
        """The ratings for the webinar's hosts: count, average (one decimal; None with none), each."""
        p = await self.webinars.staff(claims, webinar_id)
        docs = await self.room.feedback.list(p.webinar_id)
        average = round(sum(d["rating"] for d in docs) / len(docs), 1) if docs else None
        return {
            "count": len(docs),
            "average": average,
            "ratings": [{**_rating(d), "name": d["name"]} for d in docs],
        }

    async def questions_csv(self, claims: Claims, webinar_id: Any) -> str:
        p = await self.webinars.staff(claims, webinar_id)
        qs = await self.room.questions(p.webinar_id, "time", approved_only=False, include_dismissed=True)
        cols = ["created_at", "name", "anonymous", "text", "votes", "status", "answer", "approved"]
        rows = [public_question(q, staff=True) for q in qs]
        return to_csv(cols, [[r[c] for c in cols] for r in rows])

    async def polls_csv(self, claims: Claims, webinar_id: Any) -> str:
        p = await self.webinars.staff(claims, webinar_id)
        lines = []
        for poll in await self.room.polls.list(p.webinar_id):
            data = public_poll(poll, results=True)
            for option in data["options"]:
                lines.append(
                    [
                        data["question"],
                        option["text"],
                        data["counts"][option["id"]],
                        data["voters"],
                        data["status"],
                    ]
                )
        return to_csv(["question", "option", "votes", "voters", "status"], lines)

    async def timeline(self, claims: Claims, webinar_id: Any, since: int = 0) -> dict[str, Any]:
        """The durable history of ``room:<id>`` after ``since`` in seq order, for staff and admitted
        attendees. Rooms are never trimmed; ``complete`` is false only when the range starts at a hole a
        crashed publisher left."""
        p = await self.webinars.participant(claims, webinar_id)
        items = await read_history(self.hub, room(p.webinar_id), since, 100_000)
        complete = items[0]["seq"] == since + 1 if items else True
        return {"timeline": items, "complete": complete}
