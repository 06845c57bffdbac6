"""Composing a notification's email, one message per recipient: text and HTML parts from Tornado
templates (``mail_templates/``; the HTML is autoescaped), the time in the recipient's time zone
with the zone's name, the recipient's own link, a calendar file when the mail changes the event,
and one-click unsubscribe for its category (RFC 8058).

Header values are built by the standard library's ``email`` package: a name or title with CR/LF is
flattened to one line first, non-ASCII is RFC 2047-encoded (``formataddr``, ``Header``), so no text
a user typed ever becomes a header of its own. A recipient whose address is marked undeliverable, or
cannot be written as an address at all, is skipped.

With a mail process (``MAIL_PROCESS``, server.py) the server's own processes compose nothing: a
batch becomes a ``mail.compose`` job (its recipients, the notice and the links they already have),
which only the mail process runs; composing there is the same code, so a mail reads the same
either way, and the job's key (the batch's) keeps a retried batch from queueing it twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import secrets
from dataclasses import asdict, dataclass, field
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tornado.template import Loader

from realtime.notifications import calendar
from realtime.notifications.mail import MAX_ATTEMPTS as MAIL_ATTEMPTS
from realtime.notifications.mail import MailDelivery
from realtime.notifications.unsubscribe import UnsubscribeLinks
from realtime.webinars.links import JoinLinks
from storage.jobs import Job, JobQueue
from storage.mail import QUEUED, MailStore
from storage.preferences import CATEGORIES
from storage.registrations import Registrations
from storage.webinars import Webinars

log = logging.getLogger("realtime.notifications.mail")

COMPOSE_JOB = "mail.compose"

TEMPLATES = Path(__file__).resolve().parent / "mail_templates"
# The classic MIME classes and policy: several times faster than EmailMessage's header registry (a
# 10,000-recipient reminder composes in seconds, not minutes); CRLF as SMTP wants.
WIRE = compat32.clone(linesep="\r\n")
ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")
# Composing is CPU work (about 1 ms a message): let the loop serve the live rooms between messages.
# Every 25 held it for 50 ms and more on a loaded machine; 5 keeps a step near 10 ms.
YIELD_EVERY = 5
# What each mail kind says, and whether it carries the calendar file (``cancel``: METHOD:CANCEL).
KINDS: dict[str, dict[str, Any]] = {
    "notice": {},
    "received": {},
    "confirmed": {"ics": "request"},
    "approved": {"ics": "request"},
    "declined": {},
    "link": {"ics": "request"},
    "reminder": {},
    "rescheduled": {"ics": "request"},
    "cancelled": {"ics": "cancel"},
    "registration_cancelled": {"ics": "cancel"},
    "live": {},
    "thanks": {},
    "recording": {},
    "password_reset": {},
}
NO_CANCEL_LINK = frozenset({"cancelled", "registration_cancelled", "thanks", "recording"})
CATEGORY_NAMES = {
    "registration": "registration updates",
    "reminder": "reminders",
    "live": "'is live' alerts",
    "announcement": "announcements",
    "qa": "answers to your questions",
    "recording": "recordings and follow-ups",
    "general": "webinar updates",
}


@dataclass(frozen=True)
class Notice:
    """A notification as the email method receives it; ``mail`` names the kind (``KINDS``) and its
    extra fields (e.g. ``recording_url``)."""

    category: str
    title: str
    body: str
    url: str
    webinar_id: str | None = None
    mail: dict[str, Any] = field(default_factory=dict)


def one_line(text: str, limit: int = 200) -> str:
    return re.sub(r"[\r\n\t\x00-\x1f\x7f]+", " ", text).strip()[:limit]


def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(when: dt.datetime, zone: ZoneInfo) -> str:
    """``Tuesday 3 March 2026, 18:00 CET (Europe/Paris)``."""
    t = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(zone)
    return f"{t:%A} {t.day} {t:%B %Y, %H:%M} {t.tzname()} ({zone.key})"


class MailComposer:
    def __init__(
        self,
        store: MailStore,
        delivery: MailDelivery,
        webinars: Webinars,
        registrations: Registrations,
        links: JoinLinks,
        unsubscribe: UnsubscribeLinks,
        *,
        mail_from: str,
    ) -> None:
        self.store = store
        self.delivery = delivery
        self.webinars = webinars
        self.registrations = registrations
        self.links = links
        self.unsubscribe = unsubscribe
        self.mail_from = mail_from
        self.sender = parseaddr(mail_from)[1]
        self.from_header = formataddr(parseaddr(mail_from), "utf-8")
        self.domain = self.sender.rpartition("@")[2] or "localhost"
        self.keep_parts = not delivery.transport.queued
        self.html = Loader(str(TEMPLATES), autoescape="xhtml_escape")
        self.text = Loader(str(TEMPLATES), autoescape=None)
        self.elsewhere: JobQueue | None = None  # set: the mail process composes (``mail.compose``)

    async def send(
        self, user_ids: list[str], notice: Notice, batch: str, links: dict[str, str] | None = None
    ) -> int:
        """Compose and hand on the mail of ``notice`` to ``user_ids`` as one batch (``batch`` is its
        idempotency key: a repeated batch sends nothing twice); returns how many messages were new
        (0 when the mail process composes them: its job's result counts them). ``links``: each
        user's link into the webinar when the caller has them already."""
        if self.elsewhere is None:
            return await self.compose(user_ids, notice, batch, links)
        payload = {
            "users": list(user_ids),
            "notice": asdict(notice),
            "batch": batch,
            # pairs, not a document: a key is the caller's id and could hold "." or "$"
            "links": [[u, link] for u, link in (links or {}).items()],
        }
        await self.elsewhere.enqueue(COMPOSE_JOB, payload, key=f"compose:{batch}", max_attempts=MAIL_ATTEMPTS)
        return 0

    async def run(self, job: Job) -> dict[str, Any]:
        """The ``mail.compose`` job, in the mail process."""
        p = job.payload
        links = {str(u): str(link) for u, link in p.get("links") or []}
        new = await self.compose(list(p["users"]), Notice(**p["notice"]), str(p["batch"]), links or None)
        return {"new": new}

    async def compose(
        self, user_ids: list[str], notice: Notice, batch: str, links: dict[str, str] | None = None
    ) -> int:
        recipients = await self.store.addresses(user_ids)
        blocked = await self.store.suppressed(r["email"] for r in recipients.values())
        webinar = await self.webinars.find(notice.webinar_id) if notice.webinar_id else None
        regs: dict[str, dict[str, Any]] = {}
        if webinar is not None:
            users = list(recipients)
            regs = {r["user_id"]: r for r in await self.registrations.of_users(webinar["_id"], users)}
            if not links or not set(users) <= set(links):
                links = await self.links.for_users(self.registrations, webinar, users)
        links = links or {}
        docs = []
        now = dt.datetime.now(dt.UTC)
        for n, (uid, person) in enumerate(recipients.items()):
            if n % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            if person["email"].lower() in blocked:
                continue
            try:
                doc = self._compose(uid, person, notice, webinar, regs.get(uid), links.get(uid), now)
            except (ValueError, IndexError) as exc:  # an address the email package cannot write
                log.warning("no mail to user %s: %s", uid, exc)
                continue
            doc.update(key=f"{batch}:{uid}", batch=batch)
            docs.append(doc)
        return await self.delivery.submit(batch, docs)

    def _compose(
        self,
        user_id: str,
        person: dict[str, Any],
        notice: Notice,
        webinar: dict[str, Any] | None,
        reg: dict[str, Any] | None,
        link: str | None,
        now: dt.datetime,
    ) -> dict[str, Any]:
        if not ADDRESS.fullmatch(person["email"]):
            raise ValueError(f"{person['email']!r} is not an address to write in a header")
        kind = str(notice.mail.get("kind", "notice"))
        spec = KINDS.get(kind, {})
        name = one_line(str((reg or {}).get("name") or person.get("name") or ""), 100)
        zone = zone_of((reg or {}).get("timezone") or (webinar or {}).get("timezone"))
        # A notification that leads to the webinar's page leads each person to their own way in.
        wid = str((webinar or {}).get("_id", ""))
        url = link if link and notice.url in ("", self.links.page(wid)) else notice.url
        # A category outside the preferences (``account``: a password reset someone asked for) is
        # transactional: no unsubscribe link, it could switch nothing off.
        transactional = notice.category not in CATEGORIES
        unsubscribe = "" if transactional else self.unsubscribe.url(user_id, notice.category)
        context: dict[str, Any] = {
            "kind": kind,
            "name": name,
            "heading": one_line(notice.title),
            "body": notice.body,
            "url": url,
            "cancel_url": self.links.cancel(url) if kind not in NO_CANCEL_LINK else None,
            "webinar": webinar,
            "title": str((webinar or {}).get("title") or ""),
            "when": local_time(webinar["starts_at"], zone) if webinar else "",
            "duration": int((webinar or {}).get("duration_minutes") or 0),
            "calendar_links": calendar.add_links(webinar, url) if webinar and spec.get("ics") else {},
            "unsubscribe": unsubscribe,
            "category_name": CATEGORY_NAMES.get(notice.category, notice.category),
            "extra": notice.mail,
        }
        subject = one_line(str(notice.mail.get("subject") or notice.title))
        text = self.text.load(f"{kind}.txt").generate(**context).decode()
        html = self.html.load(f"{kind}.html").generate(**context).decode()

        body: Message = MIMEMultipart("alternative")
        body.attach(MIMEText(text, "plain", "utf-8"))
        body.attach(MIMEText(html, "html", "utf-8"))
        if webinar is not None and spec.get("ics"):
            method = "CANCEL" if spec["ics"] == "cancel" else "REQUEST"
            ics = calendar.invitation(
                webinar,
                domain=self.domain,
                organizer=self.sender,
                attendee=person["email"],
                url=url,
                cancel=method == "CANCEL",
            )
            invite = MIMEText(ics.decode(), "calendar", "utf-8")
            invite.set_param("method", method)
            name_of_file = "cancel.ics" if method == "CANCEL" else "invite.ics"
            invite.add_header("Content-Disposition", "attachment", filename=name_of_file)
            mixed = MIMEMultipart("mixed")
            mixed.attach(body)
            mixed.attach(invite)
            body = mixed
        body["From"] = self.from_header
        body["To"] = formataddr((name, person["email"]), "utf-8")
        body["Subject"] = subject if subject.isascii() else Header(subject, "utf-8")  # type: ignore[assignment]
        body["Date"] = format_datetime(now)
        body["Message-ID"] = f"<{secrets.token_hex(16)}@{self.domain}>"
        if unsubscribe:
            body["List-Unsubscribe"] = f"<{unsubscribe}>"
            body["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        body["Auto-Submitted"] = "auto-generated"
        return {
            "_id": secrets.token_hex(12),
            "user_id": user_id,
            "to": person["email"],
            "sender": self.sender,
            "category": notice.category,
            "kind": kind,
            "webinar_id": notice.webinar_id,
            "subject": subject,
            "raw": body.as_bytes(policy=WIRE),
            # the development mailbox shows the parts; SMTP needs only the raw message
            **({"text": text, "html": html} if self.keep_parts else {}),
            "status": QUEUED,
            "attempts": 0,
            "created_at": now,
        }
