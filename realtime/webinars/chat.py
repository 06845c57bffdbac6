"""Chat and moderation in the live room: send, delete, mute, ban, slow mode and the rate limit.

A ban is durable (MongoDB), so it holds across reconnects, tabs and processes: the participant rule
(``WebinarService.active_participant``) refuses every later subscribe and action with ``banned``,
and ``hub.kick`` closes the banned user's connections in the room everywhere (4003).

Pace: with slow mode on, an attendee sends at most one message every ``slow_mode_seconds``; always,
at most ``CHAT_RATE`` messages per ``RATE_WINDOW`` seconds. Hosts, co-hosts and panelists are never
slowed. The counts live
in MongoDB behind atomic operations (``Room.take_turn``, ``Room.recent_sends``), so the limits hold
across processes; the rule is decided here.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from config import Settings
from realtime.auth.tokens import Claims
from realtime.engine.channels import backstage, personal, room
from realtime.engine.hub import Hub
from realtime.engine.session import KICKED
from realtime.schema import read
from realtime.webinars.schemas import ChatDelete, Moderation, SlowMode, chat_message
from realtime.webinars.service import Participant, WebinarService, require_live, role_in
from realtime.webinars.stage import lower_hand
from realtime.webinars.views import public_chat
from storage.accounts import now
from storage.errors import Kind, Refused
from storage.room import Room

RATE_WINDOW = 10  # seconds; CHAT_RATE counts messages in this window


class ChatService:
    def __init__(self, settings: Settings, webinars: WebinarService, room_store: Room, hub: Hub) -> None:
        self.settings = settings
        self.webinars = webinars
        self.room = room_store
        self.hub = hub

    async def send(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        """Send a chat message; a retry with the same ``idempotency_key`` answers with the first
        send's message (same id and seq) instead of sending again."""
        body = read(chat_message(self.settings.chat_max_chars), params)
        scope = f"chat:{webinar_id}:{claims.user_id}"
        return await self.hub.idempotency.once(
            scope, body.idempotency_key, lambda: self._send(claims, webinar_id, body.text)
        )

    async def _send(self, claims: Claims, webinar_id: Any, text: str) -> dict[str, Any]:
        p = await self.webinars.active_participant(claims, webinar_id)
        require_live(p, "chat")
        if p.muted:
            raise Refused(Kind.FORBIDDEN, "muted", "a host has muted you in this chat")
        if not p.speaker:
            await self._pace(p)
        msg = await self.room.add_chat(p.webinar_id, p.user_id, p.name, text, p.role)
        out = public_chat(msg)
        out["seq"] = await self.hub.publish(room(p.webinar_id), "chat.message", out)
        return out

    async def _pace(self, p: Participant) -> None:
        """429 ``slow_mode`` or ``rate_limited`` when this attendee may not send yet."""
        slow = int(p.webinar["slow_mode_seconds"])
        if slow and not await self.room.take_turn(p.webinar_id, p.user_id, slow):
            last = await self.room.last_turn(p.webinar_id, p.user_id)
            left = slow - (now() - last).total_seconds() if last else slow
            raise Refused(
                Kind.RATE_LIMITED,
                "slow_mode",
                f"slow mode: one message every {slow} s",
                retry_after=min(slow, max(1, math.ceil(left))),
            )
        rate = self.settings.chat_rate
        sent = await self.room.recent_sends(p.webinar_id, p.user_id, rate + 1, RATE_WINDOW)
        # sent is in time order, this send among it: refused when rate + 1 sends fall within one window
        if len(sent) > rate and sent[0] > sent[-1] - timedelta(seconds=RATE_WINDOW):
            wait = (sent[1] + timedelta(seconds=RATE_WINDOW) - sent[-1]).total_seconds()
            raise Refused(
                Kind.RATE_LIMITED,
                "rate_limited",
                f"at most {rate} messages per {RATE_WINDOW} seconds",
                retry_after=max(1, math.ceil(wait)),
            )

    async def delete(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        p = await self.webinars.staff(claims, webinar_id)
        message_id = read(ChatDelete, params).message_id
        await self.room.delete_chat(p.webinar_id, message_id)
        data = {"id": message_id}
        await self.hub.publish(room(p.webinar_id), "chat.deleted", data)
        return data

    async def moderate(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        """Mute/unmute or ban/unban an attendee (``action``: mute, unmute, ban, unban)."""
        body = read(Moderation, params)
        p = await self.webinars.staff(claims, webinar_id)
        user_id, action = body.user_id, body.action
        if role_in(p.webinar, user_id, is_host_account=True) is not None:
            raise Refused(Kind.CONFLICT, "cannot_moderate_host", "hosts cannot be muted or banned")
        flag = "muted" if action in ("mute", "unmute") else "banned"
        await self.room.moderation.set(p.webinar_id, user_id, **{flag: action in ("mute", "ban")})
        data = {"user_id": user_id, "action": action}
        # the user's own channel too: a muted attendee's chat box closes at once, in every tab
        await self.hub.publish_many(
            [
                (backstage(p.webinar_id), "moderation", data),
                (personal(user_id), "moderation", {**data, "webinar_id": p.webinar_id}),
            ]
        )
        if action == "ban":
            await self.hub.kick(room(p.webinar_id), user_id, KICKED, "banned")
            await lower_hand(self.room, self.hub, p.webinar_id, user_id, "ban")
        return data

    async def moderated(self, claims: Claims, webinar_id: Any) -> dict[str, Any]:
        """Who is muted or banned in the webinar now (hosts only): what the console lists to undo."""
        p = await self.webinars.staff(claims, webinar_id)
        return {"users": await self.room.moderation.flagged(p.webinar_id)}

    async def set_slow_mode(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        seconds = read(SlowMode, params).seconds
        p = await self.webinars.staff(claims, webinar_id)
        doc = await self.webinars.webinars.update(p.webinar_id, {"slow_mode_seconds": seconds})
        data = {"slow_mode_seconds": doc["slow_mode_seconds"]}
        await self.hub.publish(room(p.webinar_id), "webinar.updated", data)
        return data
