"""Chat and moderation in the live room: send, delete, mute, ban, slow mode.

A ban is durable (MongoDB), so it holds across reconnects, tabs and processes: the policy refuses
every later subscribe, and ``hub.kick`` closes the banned user's current subscriptions everywhere.
"""

from __future__ import annotations

from typing import Any

from config import Settings
from realtime.auth.tokens import Claims
from realtime.engine.channels import backstage, room
from realtime.schema import read
from realtime.webinars.schemas import ChatDelete, Moderation, SlowMode, chat_message
from realtime.webinars.service import Hub, WebinarService, require_live
from storage.errors import Kind, Refused, forbidden
from storage.room import Room
from storage.webinars import iso

BAN_CLOSE_CODE = 4403


def public_chat(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": m["_id"],
        "user_id": m["user_id"],
        "name": m["name"],
        "text": m["text"],
        "created_at": iso(m["created_at"]),
    }


class ChatService:
    def __init__(self, settings: Settings, webinars: WebinarService, room_store: Room, hub: Hub) -> None:
        self.settings = settings
        self.webinars = webinars
        self.room = room_store
        self.hub = hub

    async def send(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        text = read(chat_message(self.settings.chat_max_chars), params).text
        p = await self.webinars.participant(claims, webinar_id)
        require_live(p, "chat")
        if not p.staff:
            mod = await self.room.moderation(p.webinar_id, p.user_id)
            if mod.get("banned"):
                raise forbidden("you are banned from this webinar")
            if mod.get("muted"):
                raise Refused(Kind.FORBIDDEN, "muted", "a host has muted you in this chat")
            await self.room.check_chat_pace(
                p.webinar_id, p.user_id, int(p.webinar["slow_mode_seconds"]), self.settings.chat_rate
            )
        msg = await self.room.add_chat(p.webinar_id, p.user_id, p.name, text)
        out = public_chat(msg)
        out["seq"] = await self.hub.publish(room(p.webinar_id), "chat.message", out)
        return out

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
        if user_id == p.webinar["owner_id"] or user_id in p.webinar["cohost_ids"]:
            raise Refused(Kind.CONFLICT, "cannot_moderate_host", "hosts cannot be muted or banned")
        flag = "muted" if action in ("mute", "unmute") else "banned"
        await self.room.set_moderation(p.webinar_id, user_id, **{flag: action in ("mute", "ban")})
        data = {"user_id": user_id, "action": action}
        await self.hub.publish(backstage(p.webinar_id), "moderation", data)
        if action == "ban":
            await self.hub.kick(room(p.webinar_id), user_id, BAN_CLOSE_CODE, "banned")
        return data

    async def set_slow_mode(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        seconds = read(SlowMode, params).seconds
        p = await self.webinars.staff(claims, webinar_id)
        doc = await self.webinars.webinars.update(p.webinar_id, {"slow_mode_seconds": seconds})
        data = {"slow_mode_seconds": doc["slow_mode_seconds"]}
        await self.hub.publish(room(p.webinar_id), "webinar.updated", data)
        return data
