"""Email as a delivery method: the transport contract, and the ``mail.send`` job.

A fan-out's email for one chunk of recipients is composed (``mail_compose.py``), stored in ``mail``
(``storage/mail.py``, one message per recipient under a unique key) and handed to the transport:

- SMTP (``mail_smtp.py``, ``SMTP_URL`` set): one ``mail.send`` job per chunk (its ``batch``), run by
  the worker. The job sends every message of its batch that is still ``queued``, over at most
  ``SMTP_CONCURRENCY`` connections, each reused for many messages. Per message: accepted is
  ``sent``; a 5xx for the recipient is ``undeliverable`` and the address is suppressed (no mail goes
  to it again); another 5xx is ``failed``; a 4xx, a timeout or a server that is down leaves it
  ``queued`` and the job is retried with backoff (``RETRY_DELAYS``) for ``MAX_ATTEMPTS`` tries, so
  nothing is lost while the server is down. A retry sends only what is still queued: a message goes
  out at least once, and twice only if a process dies between the server's acceptance and the
  status write.
- The development mailbox (``mail_mailbox.py``, no ``SMTP_URL``): storing the message is its
  delivery; it is ``sent`` at once with ``transport: mailbox`` and readable at ``/dev/mailbox``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from realtime.jobs.worker import RetryLater
from storage.jobs import Job, JobQueue
from storage.mail import FAILED, SENT, UNDELIVERABLE, MailStore

log = logging.getLogger("realtime.notifications.mail")

JOB_KIND = "mail.send"
MAX_ATTEMPTS = 30
RETRY_DELAYS = (5.0, 15.0, 60.0, 300.0, 900.0)  # then 900 s for every further attempt (about 6 h in all)


@dataclass(frozen=True)
class Outgoing:
    """One message as the transport sends it: the envelope and the bytes."""

    id: str
    sender: str
    to: str
    raw: bytes


@dataclass(frozen=True)
class Outcome:
    """What became of one message: ``sent``, ``retry`` (4xx, timeout, server down), ``undeliverable``
    (5xx for the recipient) or ``failed`` (another 5xx), with the SMTP code (0: none) and reply."""

    status: str
    code: int = 0
    reply: str = ""


class MailTransport(Protocol):
    name: str
    queued: bool  # True: messages wait for a ``mail.send`` job; False: storing them is delivering them

    async def send(self, messages: list[Outgoing]) -> list[Outcome]:
        """Send every message (in any order, several at once); one outcome per message, in order."""
        ...

    async def close(self) -> None: ...


def retry_delay(attempt: int) -> float:
    return RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]


class MailDelivery:
    """Hands stored messages to the transport; runs the ``mail.send`` job."""

    def __init__(self, store: MailStore, transport: MailTransport, jobs: JobQueue) -> None:
        self.store = store
        self.transport = transport
        self.jobs = jobs

    async def submit(self, batch: str, docs: list[dict[str, Any]]) -> int:
        """Store ``docs`` (the messages of ``batch``) and send them or queue their send job; returns
        how many were new (a repeated batch stores nothing twice)."""
        new = await self.store.add(docs)
        if not self.transport.queued:
            queued = await self.store.queued(batch)
            await self.store.mark([m["_id"] for m in queued], SENT, transport=self.transport.name)
            await self.transport.send([_outgoing(m) for m in queued])
        elif docs:
            await self.jobs.enqueue(
                JOB_KIND, {"batch": batch}, key=f"mail:{batch}", max_attempts=MAX_ATTEMPTS
            )
        return new

    async def run(self, job: Job) -> dict[str, Any]:
        messages = await self.store.queued(job.payload["batch"])
        outcomes = await self.transport.send([_outgoing(m) for m in messages])
        by_status: dict[str, list[str]] = {}
        for message, outcome in zip(messages, outcomes, strict=True):
            by_status.setdefault(outcome.status, []).append(message["_id"])
            if outcome.status in (UNDELIVERABLE, FAILED):
                reply = f"{outcome.code} {outcome.reply}"
                await self.store.mark([message["_id"]], outcome.status, error=reply)
                if outcome.status == UNDELIVERABLE:
                    await self.store.suppress(message["to"], outcome.code, outcome.reply)
                log.warning("mail to %s refused (%s): %s", message["to"], reply, outcome.status)
        await self.store.mark(by_status.get(SENT, []), SENT, transport=self.transport.name)
        retry = by_status.get("retry", [])
        result = {s: len(ids) for s, ids in by_status.items()}
        if retry:
            reasons = {o.reply for o in outcomes if o.status == "retry"}
            reason = "; ".join(sorted(reasons))[:300]
            if job.attempts >= MAX_ATTEMPTS:
                await self.store.mark(retry, FAILED, error=f"gave up after {job.attempts} attempts: {reason}")
                return result
            await self.store.note_attempt(retry, reason)
            raise RetryLater(f"{len(retry)} messages to retry: {reason}", retry_delay(job.attempts))
        return result


def _outgoing(doc: dict[str, Any]) -> Outgoing:
    return Outgoing(str(doc["_id"]), str(doc["sender"]), str(doc["to"]), bytes(doc["raw"]))
