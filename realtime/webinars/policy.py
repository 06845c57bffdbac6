"""The webinar domain's ChannelPolicy: who may subscribe to ``room:``/``backstage:``/``user:``
channels, attendance recording, and the state snapshot a late joiner receives.

A ``room:<id>``/``backstage:<id>`` whose id is a webinar is governed by that webinar's roles,
registrations and bans. Any other id is an integrator's own channel, not a webinar, and is governed by
the token's claims alone (``ClaimsPolicy``), as before the webinar domain existed."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from realtime.auth.tokens import Claims
from realtime.engine.channels import Channel, ClaimsPolicy, room
from realtime.engine.hub import Hub
from realtime.webinars.service import Participant, WebinarService, as_message
from realtime.webinars.views import (
    public_announcement,
    public_hand,
    public_poll,
    public_question,
    public_webinar,
)
from storage.errors import Refused
from storage.room import Room

SNAPSHOT_HISTORY = 50
MAX_CACHED_SNAPSHOTS = 10_000
ANNOUNCEMENT_HISTORY = 5  # the room's newest announcements in a snapshot


class WebinarPolicy:
    def __init__(self, webinars: WebinarService, room_store: Room, hub: Hub) -> None:
        self.webinars = webinars
        self.room = room_store
        self.hub = hub
        self.fallback = ClaimsPolicy()
        # (webinar_id, user_id) -> open attendance sessions of this process, so ``left`` writes only
        # for webinar rooms that ``joined`` recorded
        self._sessions: collections.Counter[tuple[str, str]] = collections.Counter()
        self._snapshots: dict[tuple[str, bool], tuple[int, asyncio.Future[dict[str, Any]]]] = {}

    async def _participant(self, claims: Claims, channel: Channel) -> Participant | str | None:
        """The participant who may take part, a refusal code (``banned``, ``forbidden``...), or None
        when the channel is not a webinar's."""
        try:
            return await self.webinars.active_participant(claims, channel.id)
        except Refused as exc:
            return None if exc.code == "not_found" else exc.code

    async def can_subscribe(self, claims: Claims, channel: Channel) -> str | None:
        if channel.kind == "user":
            return None if channel.id == claims.user_id else "forbidden"
        p = await self._participant(claims, channel)
        if p is None:
            return await self.fallback.can_subscribe(claims, channel)
        if isinstance(p, str):
            return p
        if channel.kind == "backstage" and not p.staff:
            return "forbidden"
        return None

    async def can_publish(self, claims: Claims, channel: Channel, type: str) -> str | None:
        """Only ephemeral ``typing`` in a room; every other room action is an RPC."""
        if channel.kind == "user":
            return "forbidden"
        p = await self._participant(claims, channel)
        if p is None:
            return await self.fallback.can_publish(claims, channel, type)
        if isinstance(p, str):
            return p
        if type != "typing" or channel.kind != "room" or p.webinar["status"] != "live":
            return "forbidden"
        return None

    async def joined(self, claims: Claims, channel: Channel) -> dict[str, Any] | None:
        if channel.kind == "user":
            return None
        p = await self._participant(claims, channel)
        if not isinstance(p, Participant):
            return None
        if channel.kind == "backstage":
            return await self.backstage_snapshot(p)
        await self.room.attendance.join(
            p.webinar_id, p.user_id, p.name, p.webinar["status"] == "live", role=p.role
        )
        self._sessions[(p.webinar_id, p.user_id)] += 1
        return await self.snapshot(p)

    async def left(self, claims: Claims, channel: Channel) -> None:
        key = (channel.id, claims.user_id)
        if channel.kind == "room" and self._sessions[key] > 0:
            self._sessions[key] -= 1
            if not self._sessions[key]:
                del self._sessions[key]
            await self.room.attendance.leave(channel.id, claims.user_id)

    async def close(self) -> None:
        """Write the attendance still pending (after the connections have left: their leaves too)."""
        await self.room.attendance.close()

    async def snapshot(self, p: Participant) -> dict[str, Any]:
        """What a late joiner needs: the webinar, open poll, pinned question, active announcement
        and the last few, counts, the recent durable history of ``room:<id>``, and ``me``: the
        joiner's own state (:meth:`me`)."""
        wid = p.webinar_id
        last = await self.hub.history.last_seq(room(wid))
        shared = await self._shared_state(wid, p.staff, last)
        counts = {**shared["counts"], "registrants": p.webinar["seats_taken"]}
        # read for each joiner, not shared: a vote changes the counts without a durable room
        # message, so the room's seq does not version them (a cached copy showed 0 votes)
        polls = [x for x in await self.room.polls.list(wid) if x["status"] == "open"]
        return {
            "webinar": public_webinar(p.webinar, private=p.staff),
            "role": p.role,
            **shared,
            "open_polls": [public_poll(x, results=p.staff or x["show_results"]) for x in polls],
            "counts": counts,
            "me": await self.me(p),
        }

    async def me(self, p: Participant) -> dict[str, Any]:
        """The participant's own state in the room, read at the time of the snapshot: votes per poll,
        raised hand, moderation, own questions (pending, dismissed and withdrawn ones included) and
        the questions they upvoted. Later changes reach ``user:<id>`` (``hand.*``, ``moderation``,
        ``qa.mine``); a page subscribed there before the room applies them over this."""
        wid, uid = p.webinar_id, p.user_id
        return {
            "user_id": uid,
            "votes": await self.room.polls.votes_of(wid, uid),
            "hand_raised": await self.room.hand_raised(wid, uid),
            "muted": p.muted,
            "banned": p.banned,
            "questions": [public_question(q, staff=True) for q in await self.room.questions_of(wid, uid)],
            "upvoted": await self.room.upvoted_by(wid, uid),
        }

    async def _shared_state(self, wid: str, staff: bool, last: int) -> dict[str, Any]:
        """The part of the snapshot every attendee (or every host) of a webinar gets alike (the
        polls' counts are not in it: votes publish no durable room message).

        Every change it reflects publishes a durable room message, so the room's last ``seq`` is its
        version: joiners at the same ``seq`` share one computation (5,000 people joining at once cost
        a handful of queries, not 5,000 times as many)."""
        key = (wid, staff)
        cached = self._snapshots.get(key)
        if cached is not None and cached[0] == last:
            return await asyncio.shield(cached[1])
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if len(self._snapshots) >= MAX_CACHED_SNAPSHOTS:
            self._snapshots.clear()
        self._snapshots[key] = (last, future)
        try:
            pinned = await self.room.pinned_question(wid)
            announcement = await self.room.active_announcement(wid)
            announcements = await self.room.recent_announcements(wid, limit=ANNOUNCEMENT_HISTORY)
            # ``recent`` ends where the room's history is complete, and the joiner continues live
            # from exactly there (``seq``): a message still being written lands after it, not lost
            start = max(0, last - SNAPSHOT_HISTORY)
            history = self.hub.history
            entries = await history.read_complete(room(wid), start, SNAPSHOT_HISTORY, self.hub.settle)
            recent = [as_message(e) for e in entries]
            state = {
                "pinned_question": public_question(pinned, staff=staff) if pinned else None,
                "announcement": public_announcement(announcement) if announcement else None,
                "announcements": [public_announcement(a) for a in announcements],
                "counts": {
                    "questions": await self.room.question_count(wid, approved_only=True),
                    "chat": await self.room.chat_count(wid, include_deleted=False),
                },
                "recent": recent,
                "seq": entries[-1].seq if entries else start,
            }
        except BaseException as exc:
            self._snapshots.pop(key, None)
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            future.exception()  # retrieved: waiters (if any) get it through shield
            raise
        future.set_result(state)
        return state

    async def backstage_snapshot(self, p: Participant) -> dict[str, Any]:
        wid = p.webinar_id
        pending = await self.room.pending_questions(wid)
        announcement = await self.room.active_announcement(wid, "backstage")
        return {
            "hands": [public_hand(h) for h in await self.room.hands(wid)],
            "pending_questions": [public_question(q, staff=True) for q in pending],
            "polls": [public_poll(x, results=True) for x in await self.room.polls.list(wid)],
            "announcement": public_announcement(announcement) if announcement else None,
        }
