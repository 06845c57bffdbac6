"""Q&A: ask (optionally anonymous), upvote once (never one's own question), answer, dismiss, pin,
withdraw one's own open question, and optional pre-approval.

Hosts and co-hosts run every action on a question; a panelist answers the questions the room sees
(approved ones) and runs nothing else (403 ``forbidden``).

With pre-approval on, a new question goes only to ``backstage:<id>`` until a host approves it; then
it is published to ``room:<id>``. Anonymous questions never show their author in room events; hosts
see the author in the backstage copy and the staff listing. The author hears of every change of
state of their own question (asked, approved, answered, dismissed, withdrawn) as ``qa.mine`` on
``user:<id>``, so their "My questions" follows in every tab, pending ones included.
"""

from __future__ import annotations

from typing import Any

from realtime.auth.tokens import Claims
from realtime.engine.channels import backstage, personal, room
from realtime.engine.hub import Hub
from realtime.schema import read
from realtime.webinars.records import Question, Webinar
from realtime.webinars.schemas import NewQuestion, QuestionModeration, QuestionsQuery, Upvote
from realtime.webinars.service import Participant, WebinarService, require_live
from realtime.webinars.views import public_question
from storage.errors import forbidden
from storage.room import Room

ASK_STATES = ("scheduled", "live")


class QaService:
    def __init__(self, webinars: WebinarService, room_store: Room, hub: Hub) -> None:
        self.webinars = webinars
        self.room = room_store
        self.hub = hub

    async def ask(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        """Ask; a retry with the same ``idempotency_key`` answers with the first question asked."""
        body = read(NewQuestion, params)
        scope = f"question:{webinar_id}:{claims.user_id}"
        return await self.hub.idempotency.once(
            scope, body.idempotency_key, lambda: self._ask(claims, webinar_id, body)
        )

    async def _ask(self, claims: Claims, webinar_id: Any, body: NewQuestion) -> dict[str, Any]:
        p = await self.webinars.active_participant(claims, webinar_id)
        if p.webinar["status"] not in ASK_STATES:
            require_live(p, "ask")
        approved = p.staff or not p.webinar["qa_moderation"]
        q = await self.room.add_question(p.webinar_id, p.user_id, p.name, body.text, body.anonymous, approved)
        await self._publish(p, q, "qa.question", tell_author=True)
        return public_question(q, staff=True)

    async def withdraw(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        """The author takes back their own open question; it leaves the room's list (``qa.updated``
        with ``status: "withdrawn"``)."""
        question_id = read(Upvote, params).question_id
        p = await self.webinars.active_participant(claims, webinar_id)
        if p.webinar["status"] not in ASK_STATES:
            require_live(p, "withdraw a question")
        q = await self.room.withdraw_question(p.webinar_id, question_id, p.user_id)
        await self._publish(p, q, "qa.updated", tell_author=True)
        return public_question(q, staff=True)

    async def upvote(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        question_id = read(Upvote, params).question_id
        p = await self.webinars.active_participant(claims, webinar_id)
        if p.webinar["status"] not in ASK_STATES:
            require_live(p, "vote")
        q = await self.room.upvote(p.webinar_id, question_id, p.user_id)
        await self._publish(p, q, "qa.updated")
        return public_question(q)

    async def moderate(self, claims: Claims, webinar_id: Any, params: dict[str, Any]) -> dict[str, Any]:
        """Host actions on one question: ``approve``, ``answer`` (``answer`` text optional: answered
        live), ``dismiss``, ``pin``, ``unpin``."""
        body = read(QuestionModeration, params)
        action, answer, qid = body.action, body.answer, body.question_id
        p = await self._moderator(claims, webinar_id, action, qid)
        changes: dict[str, dict[str, Any]] = {
            "approve": {"approved": True},
            "answer": {
                "status": "answered",
                "answer": answer,
                "answered_live": answer is None,
                "answered_by": {"name": p.name, "role": p.role},
            },
            "dismiss": {"status": "dismissed", "pinned": False},
            "pin": {"pinned": True},
            "unpin": {"pinned": False},
        }
        fields = changes[action]
        q = await self.room.update_question(p.webinar_id, qid, fields, unpin_others=action == "pin")
        await self._publish(p, q, "qa.question" if action == "approve" else "qa.updated", tell_author=True)
        if action == "answer":
            await self.webinars.events.question_answered(Webinar.from_doc(p.webinar), Question.from_doc(q))
        return public_question(q, staff=True)

    async def _moderator(self, claims: Claims, webinar_id: Any, action: str, qid: str) -> Participant:
        """Who may run ``action``: staff always; a panelist only ``answer``, on a question the room
        sees (a pending one is the hosts' to approve first)."""
        if action != "answer":
            return await self.webinars.staff(claims, webinar_id)
        p = await self.webinars.active_participant(claims, webinar_id)
        if p.staff:
            return p
        if p.role != "panelist":
            raise forbidden("only hosts and panelists answer questions")
        if not (await self.room.question(p.webinar_id, qid))["approved"]:
            raise forbidden("a host approves this question before a panelist can answer it")
        return p

    async def list(self, claims: Claims, webinar_id: Any, sort: str | None) -> list[dict[str, Any]]:
        order = read(QuestionsQuery, {"sort": sort}).sort or "votes"
        p = await self.webinars.participant(claims, webinar_id)
        qs = await self.room.questions(
            p.webinar_id, order, approved_only=not p.staff, include_dismissed=p.staff
        )
        return [public_question(q, staff=p.staff) for q in qs]

    async def _publish(
        self, p: Participant, q: dict[str, Any], type: str, *, tell_author: bool = False
    ) -> None:
        items = [(backstage(p.webinar_id), type, public_question(q, staff=True))]
        if q["approved"]:
            items.append((room(p.webinar_id), type, public_question(q)))
        if tell_author:
            mine = {**public_question(q, staff=True), "webinar_id": p.webinar_id}
            items.append((personal(q["user_id"]), "qa.mine", mine))
        await self.hub.publish_many(items)
