"""Email as a delivery method: the transport contract, and the ``mail.send`` job.

A fan-out's email for one chunk of recipients is composed (``mail_compose.py``), stored in ``mail``
(``storage/mail.py``, one message per recipient under a unique key) and handed to the transport:

- SMTP (``mail_smtp.py``, ``SMTP_URL`` set): one ``mail.send`` job per chunk (its ``batch``), run by
  the worker. The job sends every message of its batch that is still ``queued``, ``SLICE`` at a
  time over at most ``SMTP_CONCURRENCY`` connections, each reused within the slice. After each
  slice its outcomes are written (one update per status) and the job's lease renewed, so a long
  batch never outlives its lease and a retry never resends what was accepted; a job whose lease
  was taken meanwhile (the process stalled past it) stops there and leaves the rest to the new
  owner. A slice whose every message must be retried (the server is down or refusing) ends the
  try: the rest are not attempted and wait with it. Per message: accepted is
  ``sent``; a 5xx for the recipient is ``undeliverable`` and the address is suppressed (no mail goes
  to it again); another 5xx is ``failed``; a 4xx, a timeout or a server that is down leaves it
  ``queued`` and the job is retried with backoff (``RETRY_DELAYS``) for ``MAX_ATTEMPTS`` tries, so
  nothing is lost while the server is down. A retry sends only what is still queued: a message goes
  out at least once, and twice only if a process dies (or stalls past its lease) between the
  server's acceptance and its slice's status write.
- The development mailbox (``mail_mailbox.py``, no ``SMTP_URL``): storing the message is its
  delivery; it is ``sent`` at once with ``transport: mailbox`` and readable at ``/dev/mailbox``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from realtime.jobs.worker import RetryLater
from storage.jobs import Job, JobQueue, LeaseLost
from storage.mail import FAILED, SENT, UNDELIVERABLE, MailStore

log = logging.getLogger("realtime.notifications.mail")

JOB_KIND = "mail.send"
MAX_ATTEMPTS = 30
RETRY_DELAYS = (5.0, 15.0, 60.0, 300.0, 900.0)  # then 900 s for every further attempt (about 6 h in all)
# Messages sent between two status writes and lease renewals: 4 connections x 50 messages, a few
# seconds to a local relay, far inside the 30 s default lease even on a loaded machine.
SLICE = 200


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

    def __init__(
        self, store: MailStore, transport: MailTransport, jobs: JobQueue, *, lease_seconds: float
    ) -> None:
        self.store = store
        self.transport = transport
        self.jobs = jobs
        self.lease_seconds = lease_seconds  # the worker's JOB_LEASE_SECONDS: renewed after each slice

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
        counts: dict[str, int] = {}
        retry: list[str] = []
        reasons: set[str] = set()
        for start in range(0, len(messages), SLICE):
            part = messages[start : start + SLICE]
            outcomes = await self.transport.send([_outgoing(m) for m in part])
            await self._record(part, outcomes)
            for o in outcomes:
                counts[o.status] = counts.get(o.status, 0) + 1
            retry += [m["_id"] for m, o in zip(part, outcomes, strict=True) if o.status == "retry"]
            reasons |= {o.reply for o in outcomes if o.status == "retry"}
            if all(o.status == "retry" for o in outcomes):
                rest = messages[start + SLICE :]  # the server is down or refusing: wait with them
                retry += [m["_id"] for m in rest]
                counts["retry"] += len(rest)
                break
            if start + SLICE < len(messages) and not await self.jobs.extend(job, self.lease_seconds):
                raise LeaseLost(f"lease taken after {start + len(part)} of {len(messages)} messages")
        if retry:
            reason = "; ".join(sorted(reasons))[:300]
            if job.attempts >= MAX_ATTEMPTS:
                await self.store.mark(retry, FAILED, error=f"gave up after {job.attempts} attempts: {reason}")
                return counts
            await self.store.note_attempt(retry, reason)
            raise RetryLater(f"{len(retry)} messages to retry: {reason}", retry_delay(job.attempts))
        return counts

    async def _record(self, messages: list[dict[str, Any]], outcomes: list[Outcome]) -> None:
        """Write the outcomes of one slice: the sent ones with one update, refusals one by one."""
        sent: list[str] = []
        for message, outcome in zip(messages, outcomes, strict=True):
            if outcome.status == SENT:
                sent.append(message["_id"])
            elif outcome.status in (UNDELIVERABLE, FAILED):
                reply = f"{outcome.code} {outcome.reply}"
                await self.store.mark([message["_id"]], outcome.status, error=reply)
                if outcome.status == UNDELIVERABLE:
                    await self.store.suppress(message["to"], outcome.code, outcome.reply)
                log.warning("mail to %s refused (%s): %s", message["to"], reply, outcome.status)
        await self.store.mark(sent, SENT, transport=self.transport.name)


def _outgoing(doc: dict[str, Any]) -> Outgoing:
    return Outgoing(str(doc["_id"]), str(doc["sender"]), str(doc["to"]), bytes(doc["raw"]))
