"""Registers every live-room action as an RPC method; each calls the same service method as its
REST twin. Params always carry ``webinar_id``; a ``Refused`` reaches the caller as ``rpc_error`` with
the same code, so the live protocol refuses exactly as REST does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from realtime.auth.tokens import Claims
from realtime.engine.rpc import RpcContext, RpcMethod, RpcRegistry
from realtime.webinars.chat import ChatService
from realtime.webinars.polls import PollService
from realtime.webinars.qa import QaService
from realtime.webinars.service import WebinarService
from realtime.webinars.stage import StageService
from storage.errors import invalid

Action = Callable[[Claims, Any, dict[str, Any]], Awaitable[Any]]


def method(action: Action, /, **fixed: Any) -> RpcMethod:
    async def call(ctx: RpcContext, params: dict[str, Any]) -> Any:
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            raise invalid("params", "must be an object")
        body = dict(params)
        webinar_id = body.pop("webinar_id", None)
        body.update(fixed)
        return await action(ctx.claims, webinar_id, body)

    return call


def register(
    rpc: RpcRegistry,
    webinars: WebinarService,
    chat: ChatService,
    qa: QaService,
    polls: PollService,
    stage: StageService,
) -> None:
    async def go_live(claims: Claims, wid: Any, body: dict[str, Any]) -> Any:
        return {"status": (await webinars.go_live(claims, wid))["status"]}

    async def end(claims: Claims, wid: Any, body: dict[str, Any]) -> Any:
        return {"status": (await webinars.end(claims, wid))["status"]}

    table: dict[str, RpcMethod] = {
        "webinar.go_live": method(go_live),
        "webinar.end": method(end),
        "chat.send": method(chat.send),
        "chat.delete": method(chat.delete),
        "chat.mute": method(chat.moderate, action="mute"),
        "chat.unmute": method(chat.moderate, action="unmute"),
        "chat.ban": method(chat.moderate, action="ban"),
        "chat.unban": method(chat.moderate, action="unban"),
        "chat.slow_mode": method(chat.set_slow_mode),
        "qa.ask": method(qa.ask),
        "qa.upvote": method(qa.upvote),
        "qa.withdraw": method(qa.withdraw),
        "qa.approve": method(qa.moderate, action="approve"),
        "qa.answer": method(qa.moderate, action="answer"),
        "qa.dismiss": method(qa.moderate, action="dismiss"),
        "qa.pin": method(qa.moderate, action="pin"),
        "qa.unpin": method(qa.moderate, action="unpin"),
        "poll.create": method(polls.create),
        "poll.open": method(polls.control, action="open"),
        "poll.close": method(polls.control, action="close"),
        "poll.show_results": method(polls.control, action="show_results"),
        "poll.hide_results": method(polls.control, action="hide_results"),
        "poll.vote": method(polls.vote),
        "reaction.send": method(stage.react),
        "hand.raise": method(stage.hand, action="raise"),
        "hand.lower": method(stage.hand, action="lower"),
        "announcement.send": method(stage.announce),
    }
    for name, call in table.items():
        rpc.register(name, call)
