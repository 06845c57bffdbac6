"""The live room over REST; every action calls the same service method as its RPC twin."""

from __future__ import annotations

from typing import Any

from handlers.api import ApiHandler
from storage.errors import Kind, Refused


class StateHandler(ApiHandler):
    """The late-joiner snapshot (the same one the live protocol sends with ``subscribed``)."""

    async def get(self, webinar_id: str) -> None:
        claims = await self.claims()
        p = await self.call(self.deps.webinars.participant(claims, webinar_id))
        self.send(await self.deps.policy.snapshot(p))


class ChatHandler(ApiHandler):
    async def post(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.chat.send(claims, webinar_id, self.body())), 201)


class ChatMessageHandler(ApiHandler):
    async def delete(self, webinar_id: str, message_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.chat.delete(claims, webinar_id, {"message_id": message_id})))


class ModerationHandler(ApiHandler):
    async def get(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.chat.moderated(claims, webinar_id)))

    async def post(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.chat.moderate(claims, webinar_id, self.body())))


class SlowModeHandler(ApiHandler):
    async def put(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.chat.set_slow_mode(claims, webinar_id, self.body())))


class QuestionsHandler(ApiHandler):
    async def get(self, webinar_id: str) -> None:
        claims = await self.claims()
        sort = self.get_query_argument("sort", None)
        self.send({"questions": await self.call(self.deps.qa.list(claims, webinar_id, sort))})

    async def post(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.qa.ask(claims, webinar_id, self.body())), 201)


class QuestionActionHandler(ApiHandler):
    """POST .../questions/<id>/<upvote|withdraw|approve|answer|dismiss|pin|unpin>."""

    async def post(self, webinar_id: str, question_id: str, action: str) -> None:
        claims = await self.claims()
        qa = self.deps.qa
        if action in ("upvote", "withdraw"):
            act = qa.upvote if action == "upvote" else qa.withdraw
            result = await self.call(act(claims, webinar_id, {"question_id": question_id}))
        else:
            body = _params(self.body(), question_id=question_id, action=action)
            result = await self.call(qa.moderate(claims, webinar_id, body))
        self.send(result)


class PollsHandler(ApiHandler):
    async def get(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send({"polls": await self.call(self.deps.polls.list(claims, webinar_id))})

    async def post(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.polls.create(claims, webinar_id, self.body())), 201)


class PollActionHandler(ApiHandler):
    """POST .../polls/<id>/<vote|open|close|show_results|hide_results>."""

    async def post(self, webinar_id: str, poll_id: str, action: str) -> None:
        claims = await self.claims()
        polls = self.deps.polls
        if action == "vote":
            result = await self.call(polls.vote(claims, webinar_id, _params(self.body(), poll_id=poll_id)))
        else:
            result = await self.call(
                polls.control(claims, webinar_id, {"poll_id": poll_id, "action": action})
            )
        self.send(result)


class ReactionsHandler(ApiHandler):
    async def post(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.stage.react(claims, webinar_id, self.body())), 202)


class HandsHandler(ApiHandler):
    async def get(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send({"hands": await self.call(self.deps.stage.hands(claims, webinar_id))})

    async def post(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.stage.hand(claims, webinar_id, self.body())))


class AnnouncementsHandler(ApiHandler):
    async def post(self, webinar_id: str) -> None:
        claims = await self.claims()
        self.send(await self.call(self.deps.stage.announce(claims, webinar_id, self.body())), 201)


def _params(body: dict[str, Any], **path: str) -> dict[str, Any]:
    """Merge path parameters into the body; a body may not override them."""
    clash = sorted(set(body) & set(path))
    if clash:
        raise Refused(Kind.INVALID, "invalid", f"{clash[0]}: is given by the URL")
    return {**body, **path}
