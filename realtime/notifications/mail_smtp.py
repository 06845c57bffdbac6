"""The SMTP transport (aiosmtplib): ``smtp://`` upgrades with STARTTLS when the server offers it,
``smtps://`` speaks TLS from the start; ``user:password@`` logs in.

A batch is sent over at most ``concurrency`` connections per process (a semaphore shared by every
batch), each connection sending message after message (SMTP sends one at a time per connection).
A connection that breaks is opened again for the next message; when it cannot be opened the
messages it had not sent are left for the retry. Every connect and command has ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import unquote, urlsplit

import aiosmtplib

from realtime.notifications.mail import Outcome, Outgoing

log = logging.getLogger("realtime.notifications.mail")


class SmtpTransport:
    name = "smtp"
    queued = True

    def __init__(self, url: str, *, concurrency: int = 4, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.tls = parts.scheme == "smtps"
        self.hostname = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency

    def _client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.hostname,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.tls,
            start_tls=None if not self.tls else False,  # None: STARTTLS when the server offers it
            timeout=self.timeout,
        )

    async def send(self, messages: list[Outgoing]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(messages)
        pending: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(messages)):
            pending.put_nowait(i)
        lanes = min(self.concurrency, len(messages))
        await asyncio.gather(*(self._lane(messages, outcomes, pending) for _ in range(lanes)))
        down = Outcome("retry", 0, "SMTP server unreachable")
        return [o if o is not None else down for o in outcomes]

    async def _lane(
        self, messages: list[Outgoing], outcomes: list[Outcome | None], pending: asyncio.Queue[int]
    ) -> None:
        """One connection sending messages from ``pending`` until it is empty or the server is gone."""
        async with self._slots:
            smtp: aiosmtplib.SMTP | None = None
            try:
                while not pending.empty():
                    i = pending.get_nowait()
                    if smtp is None or not smtp.is_connected:
                        smtp = self._client()
                        try:
                            await smtp.connect()
                        except (aiosmtplib.SMTPException, OSError) as exc:
                            log.info("SMTP connect to %s:%d failed: %s", self.hostname, self.port, exc)
                            outcomes[i] = Outcome("retry", getattr(exc, "code", 0), str(exc))
                            return  # the rest stay unsent: retried with the job
                    outcomes[i] = await self._one(smtp, messages[i])
            finally:
                if smtp is not None and smtp.is_connected:
                    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                        await smtp.quit()

    async def _one(self, smtp: aiosmtplib.SMTP, message: Outgoing) -> Outcome:
        try:
            await smtp.sendmail(message.sender, [message.to], message.raw)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0]
            status = "undeliverable" if refusal.code >= 500 else "retry"
            return Outcome(status, refusal.code, refusal.message)
        except aiosmtplib.SMTPResponseException as exc:
            return Outcome("failed" if exc.code >= 500 else "retry", exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            smtp.close()  # a broken connection: the next message opens a new one
            return Outcome("retry", 0, f"{type(exc).__name__}: {exc}")
        return Outcome("sent", 250)

    async def close(self) -> None:
        return None
