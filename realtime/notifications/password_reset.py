"""Hosts reset a forgotten password by email.

``request(email)`` only queues a ``mail.password_reset`` job, whatever the address: the answer and
the work the request does are the same whether or not a host account has it (no enumeration, by
answer or by timing). The job looks the account up and, for a host, mails a single-use link
(``storage/password_resets.py``) to ``/reset-password#token=...`` (the token rides in the fragment,
so it never reaches a server log). ``confirm`` uses the token once and sets the new password with
the accounts store's reset: every refresh token and every host token issued until then stop working.
"""

from __future__ import annotations

from typing import Any

from realtime.notifications.mail_compose import MailComposer, Notice
from storage.accounts import Accounts
from storage.errors import unauthorized
from storage.jobs import Job, JobQueue
from storage.password_resets import PasswordResets

RESET_JOB = "mail.password_reset"


class PasswordResetMail:
    def __init__(
        self,
        accounts: Accounts,
        resets: PasswordResets,
        jobs: JobQueue,
        email: MailComposer | None,
        *,
        base_url: str,
        ttl: int,
    ) -> None:
        self.accounts = accounts
        self.resets = resets
        self.jobs = jobs
        self.email = email
        self.base_url = base_url.rstrip("/")
        self.ttl = ttl

    async def request(self, email: str) -> None:
        await self.jobs.enqueue(RESET_JOB, {"email": email})

    async def run(self, job: Job) -> dict[str, Any]:
        """Mail the reset link to the host with the job's address (nothing for any other address)."""
        hosts = await self.accounts.find_hosts([job.payload["email"]])
        if self.email is None or not hosts:
            return {"sent": 0}
        user = hosts[0]
        token = await self.resets.issue(user["_id"], self.ttl)
        notice = Notice(
            "account",
            "Reset your password",
            "",
            f"{self.base_url}/reset-password#token={token}",
            None,
            {"kind": "password_reset", "subject": "Reset your password", "minutes": self.ttl // 60},
        )
        return {"sent": await self.email.send([user["_id"]], notice, f"reset:{job.id}")}

    async def confirm(self, token: str, password: str) -> dict[str, Any]:
        """Set ``password`` for the token's account (once); 401 ``reset_invalid`` for an unknown, used
        or expired token."""
        user_id = await self.resets.consume(token)
        user = await self.accounts.get(user_id) if user_id else None
        if user is None or user.get("role") != "host":
            raise unauthorized(
                "reset_invalid", "this reset link is invalid, used or expired; ask for a new one"
            )
        return await self.accounts.reset_password(user["email"], password)
