"""Polls: a host prepares (single or multiple choice), opens, closes and chooses whether attendees
see results; one vote per person (unique index). Live results go to ``backstage:<id>`` on every vote
and to ``room:<id>`` only while ``show_results`` is on."""

from __future__ import annotations

from typing import Any

from realtime.auth.tokens import Claims
from realtime.engine.channels import backstage, room
from realtime.engine.hub import Hub
from realtime.schema import read
from realtime.webinars.schemas import NewPoll, PollControl, Vote
from realtime.webinars.service import WebinarService, require_live
from realtime.webinars.views import public_poll
from storage.errors import conflict, invalid
from storage.room import Room


class PollService:
    def __init__(self, webinars: WebinarService, room_store: Room, hub: Hub) -> None:
        self.webinars = webinars
        self.room = room_store
        self.hub = hub

    async def create(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        new = read(NewPoll, params)
        p = await self.webinars.staff(claims, webinar_id)
        if p.webinar["status"] in ("ended", "cancelled"):
            require_live(p, "prepare a poll")
        poll = await self.room.polls.add(p.webinar_id, new.question, new.options, new.multiple)
        return public_poll(poll, results=True)

    async def control(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        """``open``, ``close``, ``show_results`` or ``hide_results``."""
        body = read(PollControl, params)
        action, poll_id = body.action, body.poll_id
        p = await self.webinars.staff(claims, webinar_id)
        wid = p.webinar_id
        if action == "open":
            require_live(p, "open a poll")
            poll = await self.room.polls.set_status(wid, poll_id, "draft", "open")
            await self.hub.publish(room(wid), "poll.opened", public_poll(poll, results=poll["show_results"]))
        elif action == "close":
            poll = await self.room.polls.set_status(wid, poll_id, "open", "closed")
            await self.hub.publish(room(wid), "poll.closed", public_poll(poll, results=poll["show_results"]))
        else:
            poll = await self.room.polls.set(wid, poll_id, {"show_results": action == "show_results"})
            # hiding publishes too (without counts), so every client and cached snapshot follows
            await self.hub.publish(room(wid), "poll.results", public_poll(poll, results=poll["show_results"]))
        await self.hub.publish(backstage(wid), "poll.results", public_poll(poll, results=True))
        return public_poll(poll, results=True)

    async def vote(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        vote = read(Vote, params)
        choices = vote.choices
        p = await self.webinars.active_participant(claims, webinar_id)
        require_live(p, "vote")
        poll = await self.room.polls.get(p.webinar_id, vote.poll_id)
        if poll["status"] != "open":
            raise conflict("poll_not_open", f"the poll is {poll['status']}")
        valid = {o["id"] for o in poll["options"]}
        if len(set(choices)) != len(choices) or not set(choices) <= valid:
            raise invalid("choices", "must name distinct option ids of this poll")
        if len(choices) > 1 and not poll["multiple"]:
            raise invalid("choices", "this poll takes a single choice")
        poll = await self.room.polls.vote(p.webinar_id, poll["_id"], p.user_id, choices)
        items = [(backstage(p.webinar_id), "poll.results", public_poll(poll, results=True))]
        if poll["show_results"]:
            items.append((room(p.webinar_id), "poll.results", public_poll(poll, results=True)))
        await self.hub.publish_many(items, durable=False)
        return {"poll_id": poll["_id"], "choices": choices}

    async def list(self, claims: Claims, webinar_id: Any) -> list[dict[str, Any]]:
        p = await self.webinars.participant(claims, webinar_id)
        polls = await self.room.polls.list(p.webinar_id)
        if not p.staff:
            polls = [x for x in polls if x["status"] != "draft"]
        return [public_poll(x, results=p.staff or x["show_results"]) for x in polls]
