"""The base of every /api handler: bearer-token authentication and domain errors rendered as JSON."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from handlers.base import ApiError, JsonHandler
from handlers.bearer import bearer_claims
from realtime.reports import ReportService
from realtime.room_chat import ChatService
from realtime.room_policy import WebinarPolicy
from realtime.room_polls import PollService
from realtime.room_qa import QaService
from realtime.room_stage import StageService
from realtime.tokens import Claims, TokenService
from realtime.webinars import WebinarService
from storage.accounts import Accounts
from storage.errors import DomainError

T = TypeVar("T")


@dataclass
class ApiDeps:
    """What the API handlers need; built once in server.open_services and passed via the route table."""

    settings: Any
    tokens: TokenService
    accounts: Accounts
    webinars: WebinarService
    chat: ChatService
    qa: QaService
    polls: PollService
    stage: StageService
    policy: WebinarPolicy
    reports: ReportService


class ApiHandler(JsonHandler):
    def initialize(self, deps: ApiDeps) -> None:
        self.deps = deps

    async def claims(self) -> Claims:
        """The verified caller, or 401 ``unauthorized``/``token_expired``/``token_revoked``."""
        return await bearer_claims(self, self.deps.tokens)

    async def call(self, action: Awaitable[T]) -> T:
        """Await one service action, turning a DomainError into the matching JSON error response."""
        try:
            return await action
        except DomainError as exc:
            raise ApiError(exc.status, exc.code, exc.message) from None

    def body(self) -> dict[str, Any]:
        return self.json_body()

    def send_csv(self, text: str, filename: str) -> None:
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        self.finish(text)
