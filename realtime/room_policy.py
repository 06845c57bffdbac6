"""The webinar domain's ChannelPolicy: who may subscribe to ``room:``/``backstage:``/``user:``
channels, attendance recording, and the state snapshot a late joiner receives."""

from __future__ import annotations

from typing import Any

from realtime.channels import Channel, room
from realtime.room_polls import public_poll
from realtime.room_qa import public_question
from realtime.room_stage import public_announcement, public_hand
from realtime.tokens import Claims
from realtime.webinars import Hub, Participant, WebinarService, read_history
from storage.errors import DomainError
from storage.room import Room
from storage.webinars import public_webinar

SNAPSHOT_HISTORY = 50


class WebinarPolicy:
    def __init__(self, webinars: WebinarService, room_store: Room, hub: Hub) -> None:
        self.webinars = webinars
        self.room = room_store
        self.hub = hub

    async def _participant(self, claims: Claims, channel: Channel) -> Participant | str:
        try:
            p = await self.webinars.participant(claims, channel.id)
        except DomainError as exc:
            return exc.code
        if not p.staff and (await self.room.moderation(p.webinar_id, p.user_id)).get("banned"):
            return "banned"
        return p

    async def can_subscribe(self, claims: Claims, channel: Channel) -> str | None:
        if channel.kind == "user":
            return None if channel.id == claims.user_id else "forbidden"
        p = await self._participant(claims, channel)
        if isinstance(p, str):
            return p
        if channel.kind == "backstage" and not p.staff:
            return "forbidden"
        return None

    async def can_publish(self, claims: Claims, channel: Channel, type: str) -> str | None:
        return "forbidden"  # every room action is an RPC, validated and authorised by its service

    async def joined(self, claims: Claims, channel: Channel) -> dict[str, Any] | None:
        if channel.kind == "user":
            return None
        p = await self._participant(claims, channel)
        if isinstance(p, str):
            return None
        if channel.kind == "backstage":
            return await self.backstage_snapshot(p)
        await self.room.attendance_join(p.webinar_id, p.user_id, p.name, p.webinar["status"] == "live")
        return await self.snapshot(p)

    async def left(self, claims: Claims, channel: Channel) -> None:
        if channel.kind == "room":
            await self.room.attendance_leave(channel.id, claims.user_id)

    async def snapshot(self, p: Participant) -> dict[str, Any]:
        """What a late joiner needs: the webinar, open poll, pinned question, active announcement,
        counts and the recent durable history of ``room:<id>``."""
        wid = p.webinar_id
        polls = [x for x in await self.room.polls(wid) if x["status"] == "open"]
        pinned = await self.room.db.questions.find_one({"webinar_id": wid, "pinned": True, "approved": True})
        announcement = await self.room.active_announcement(wid)
        last = await self.hub.history.last_seq(room(wid))
        recent = await read_history(self.hub, room(wid), max(0, last - SNAPSHOT_HISTORY), SNAPSHOT_HISTORY)
        return {
            "webinar": public_webinar(p.webinar),
            "role": p.role,
            "open_polls": [public_poll(x, results=p.staff or x["show_results"]) for x in polls],
            "pinned_question": public_question(pinned, staff=p.staff) if pinned else None,
            "announcement": public_announcement(announcement) if announcement else None,
            "counts": {
                "questions": await self.room.count("questions", wid, approved=True),
                "chat": await self.room.count("chat", wid, deleted=False),
                "registrants": p.webinar["seats_taken"],
            },
            "recent": recent,
        }

    async def backstage_snapshot(self, p: Participant) -> dict[str, Any]:
        wid = p.webinar_id
        pending = await self.room.db.questions.find({"webinar_id": wid, "approved": False}).to_list(500)
        announcement = await self.room.active_announcement(wid, "backstage")
        return {
            "hands": [public_hand(h) for h in await self.room.hands(wid)],
            "pending_questions": [public_question(q, staff=True) for q in pending],
            "polls": [public_poll(x, results=True) for x in await self.room.polls(wid)],
            "announcement": public_announcement(announcement) if announcement else None,
        }
