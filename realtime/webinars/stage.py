"""Announcements, raised hands and reactions.

Reactions are ephemeral and coalesced: each process counts them in memory per webinar and publishes
one ephemeral ``reactions`` message per webinar every ``PRESENCE_INTERVAL`` with the counts since the
last one, so 5,000 people tapping at once cost one message per interval per process, not 5,000.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

from config import Settings
from realtime.auth.tokens import Claims
from realtime.engine.channels import backstage, personal, room
from realtime.engine.hub import Hub
from realtime.schema import read
from realtime.webinars.records import Announcement, Webinar
from realtime.webinars.schemas import Hand, NewAnnouncement, reaction
from realtime.webinars.service import WebinarService, require_live
from realtime.webinars.views import public_announcement, public_hand
from storage.cancellation import raise_if_cancelling
from storage.errors import Kind, Refused
from storage.room import Room

log = logging.getLogger("realtime.stage")


async def lower_hand(room_store: Room, hub: Hub, webinar_id: str, user_id: str, by: str) -> None:
    """Take ``user_id``'s hand out of the queue, if it is there, and tell the backstage and the
    user's own channel (every tab of theirs flips its button: ``by`` is ``you``, ``host`` or
    ``ban``)."""
    if await room_store.lower_hand(webinar_id, user_id):
        await hub.publish_many(
            [
                (backstage(webinar_id), "hand.lowered", {"user_id": user_id}),
                (personal(user_id), "hand.lowered", {"webinar_id": webinar_id, "by": by}),
            ]
        )


class StageService:
    def __init__(self, settings: Settings, webinars: WebinarService, room_store: Room, hub: Hub) -> None:
        self.settings = settings
        self.webinars = webinars
        self.room = room_store
        self.hub = hub
        self._counts: dict[str, collections.Counter[str]] = {}
        self._task: asyncio.Task[None] | None = None

    async def announce(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        """Banner to ``room:<id>`` (default) or ``backstage:<id>``; a room one is an ``announcement_made``."""
        body = read(NewAnnouncement, params)
        text, audience = body.text, body.audience
        p = await self.webinars.staff(claims, webinar_id)
        if p.webinar["status"] in ("ended", "cancelled"):
            require_live(p, "announce")
        a = await self.room.add_announcement(p.webinar_id, p.user_id, text, audience)
        channel = room(p.webinar_id) if audience == "room" else backstage(p.webinar_id)
        await self.hub.publish(channel, "announcement", public_announcement(a))
        if audience == "room":
            await self.webinars.events.announcement_made(
                Webinar.from_doc(p.webinar), Announcement.from_doc(a)
            )
        return public_announcement(a)

    async def hand(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        """``raise``/``lower`` your own hand; a host may ``lower`` anyone's (``user_id``)."""
        body = read(Hand, params)
        action = body.action
        p = await self.webinars.active_participant(claims, webinar_id)
        require_live(p, "raise a hand")
        target = p.user_id
        if body.user_id is not None:
            target = body.user_id
            if target != p.user_id and not p.staff:
                raise Refused(Kind.FORBIDDEN, "forbidden", "only a host may lower someone else's hand")
        if action == "raise":
            if target != p.user_id:
                raise Refused(Kind.FORBIDDEN, "forbidden", "you can only raise your own hand")
            if await self.room.raise_hand(p.webinar_id, p.user_id, p.name):
                await self.hub.publish_many(
                    [
                        (backstage(p.webinar_id), "hand.raised", {"user_id": p.user_id, "name": p.name}),
                        (personal(p.user_id), "hand.raised", {"webinar_id": p.webinar_id, "by": "you"}),
                    ]
                )
        else:
            by = "you" if target == p.user_id else "host"
            await lower_hand(self.room, self.hub, p.webinar_id, target, by)
        return {"user_id": target, "raised": action == "raise"}

    async def hands(self, claims: Claims, webinar_id: Any) -> list[dict[str, Any]]:
        p = await self.webinars.staff(claims, webinar_id)
        return [public_hand(h) for h in await self.room.hands(p.webinar_id)]

    # reactions ---------------------------------------------------------------------------------

    async def react(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        emoji = read(reaction(tuple(self.settings.reactions)), params).emoji
        p = await self.webinars.active_participant(claims, webinar_id)
        require_live(p, "react")
        self._counts.setdefault(p.webinar_id, collections.Counter())[emoji] += 1
        return {"emoji": emoji}

    async def flush_reactions(self) -> None:
        """Publish the counts gathered since the last flush, one ephemeral message per webinar."""
        counts, self._counts = self._counts, {}
        for webinar_id, counter in counts.items():
            # the engagement total is persisted once per interval too, never once per tap
            await self.room.add_reactions(webinar_id, sum(counter.values()))
            data = {"counts": dict(counter), "interval": self.settings.presence_interval}
            await self.hub.publish(room(webinar_id), "reactions", data, durable=False)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.presence_interval)
            try:
                await self.flush_reactions()
            except Exception:
                raise_if_cancelling()
                log.exception("publishing reactions failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
