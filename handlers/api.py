"""The base of every /api handler: bearer-token authentication and domain errors rendered as JSON."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from config import Settings
from handlers.base import JsonHandler
from handlers.bearer import bearer_claims
from realtime.auth.tokens import Claims, TokenService
from realtime.notifications.password_reset import PasswordResetMail
from realtime.webinars.chat import ChatService
from realtime.webinars.policy import WebinarPolicy
from realtime.webinars.polls import PollService
from realtime.webinars.qa import QaService
from realtime.webinars.reports import ReportService
from realtime.webinars.service import WebinarService
from realtime.webinars.stage import StageService
from storage.accounts import Accounts
from storage.rate_limits import RateLimits

T = TypeVar("T")


@dataclass
class ApiDeps:
    """What the API handlers need; built once in server.open_services and passed via the route table."""

    settings: Settings
    tokens: TokenService
    accounts: Accounts
    webinars: WebinarService
    chat: ChatService
    qa: QaService
    polls: PollService
    stage: StageService
    policy: WebinarPolicy
    reports: ReportService
    limits: RateLimits
    password_resets: PasswordResetMail | None = None  # set by server.open_services (notifications)


class ApiHandler(JsonHandler):
    def initialize(self, deps: ApiDeps) -> None:
        self.deps = deps

    async def claims(self) -> Claims:
        """The verified caller, or 401 ``unauthorized``/``token_expired``/``token_revoked``."""
        return await bearer_claims(self, self.deps.tokens)

    async def call(self, action: Awaitable[T]) -> T:
        """Await one service action (a ``Refused`` it raises is rendered by ``write_error``)."""
        return await action

    def body(self) -> dict[str, Any]:
        return self.json_body()

    def send_csv(self, text: str, filename: str) -> None:
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        self.finish(text)
