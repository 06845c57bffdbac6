"""What the webinar actions notify, and the reminders before a webinar starts.

``NotificationTriggers`` implements the webinar events (``realtime.webinars.events.WebinarEvents``),
which the webinar services deliver after their own write succeeded. Each uses an idempotency key
derived from the event (registration id, announcement id, start time...), so an event delivered
twice notifies once. Fan-outs to every registrant run as background jobs.

Reminders: one ``reminder`` job per webinar and offset (``REMINDER_OFFSETS`` minutes before the
start), keyed by webinar, offset and start time. A reschedule cancels the queued reminders of the
old time and queues the new ones; a cancelled webinar cancels them. The job reads the approved
registrations when it fires, so a cancelled registration gets no reminder, and it re-checks the
webinar (still scheduled, same start) so a stale reminder is skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from typing import Any

from realtime.notifications.mail_compose import Notice
from realtime.notifications.notifier import Notifier
from realtime.webinars.audience import RoomAudience
from realtime.webinars.records import Announcement, Question, Registration, Webinar
from storage.jobs import Job, JobQueue
from storage.webinars import Webinars

log = logging.getLogger("realtime.notifications.notifier")

REMINDER_JOB = "reminder"
LINK_JOB = "mail.link"
NOT_REMINDED = ("cancelled", "ended", "live")


def _epoch(when: dt.datetime) -> int:
    return int((when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)).timestamp())


def _minutes(offset: int) -> str:
    if offset % 1440 == 0:
        n, unit = offset // 1440, "day"
    elif offset % 60 == 0:
        n, unit = offset // 60, "hour"
    else:
        n, unit = offset, "minute"
    return f"{n} {unit}{'s' if n != 1 else ''}"


class NotificationTriggers:
    def __init__(
        self,
        notifier: Notifier,
        jobs: JobQueue,
        audience: RoomAudience,
        *,
        reminder_offsets: tuple[int, ...],
        base_url: str,
    ) -> None:
        self.notifier = notifier
        self.jobs = jobs
        self.audience = audience  # announcements reach the registrants in the room live
        self.webinars = Webinars(notifier.db)
        self.offsets = reminder_offsets
        self.base_url = base_url.rstrip("/")

    def url(self, webinar_id: str) -> str:
        return f"{self.base_url}/webinars/{webinar_id}"

    # the webinar events (WebinarEvents) ----------------------------------------------------------

    async def registration_received(self, webinar: Webinar, registration: Registration) -> None:
        await self._registration(webinar, registration, decided=False)

    async def registration_decided(self, webinar: Webinar, registration: Registration) -> None:
        await self._registration(webinar, registration, decided=True)

    async def _registration(self, webinar: Webinar, registration: Registration, *, decided: bool) -> None:
        """Tell the registrant where they stand; ``approved`` also queues the webinar's reminders."""
        status, title = registration.status, webinar.title or "a webinar"
        if status == "approved":
            await self.schedule_reminders(webinar)
            heading, body = "Registration confirmed", f"You are registered for {title}."
            kind = "approved" if decided else "confirmed"
        elif status == "pending":
            heading, body = (
                "Registration received",
                f"Your registration for {title} awaits the host's approval.",
            )
            kind = "received"
            if not decided:
                await self._tell_hosts(webinar, registration)
        else:
            heading, body = "Registration update", f"Your registration for {title} is {status}."
            kind = "declined"
        if registration.user_id:
            await self.notifier.notify(
                [registration.user_id],
                "registration",
                heading,
                body,
                self.url(webinar.id),
                webinar.id,
                f"registration:{registration.id}:{status}",
                {"kind": kind, "subject": f"{heading}: {title}"},
            )

    async def registration_cancelled(self, webinar: Webinar, registration: Registration) -> None:
        """The (former) registrant: their link ended, and the calendar file removes the event."""
        if not registration.user_id:
            return
        title = webinar.title or "a webinar"
        await self.notifier.notify(
            [registration.user_id],
            "registration",
            "Registration cancelled",
            f"Your registration for {title} is cancelled; its personal link no longer works.",
            self.url(webinar.id),
            webinar.id,
            # a registration revived and cancelled again is told again
            f"registration:{registration.id}:cancelled:{time.time_ns() // 1_000_000}",
            {"kind": "registration_cancelled", "subject": f"Registration cancelled: {title}"},
        )

    async def _tell_hosts(self, webinar: Webinar, registration: Registration) -> None:
        """The webinar's host and co-hosts: a registration awaits their approval (their link: the console)."""
        doc = await self.webinars.find(webinar.id)
        if doc is None:
            return
        staff = [doc.get("owner_id"), *doc.get("cohost_ids", [])]
        title = webinar.title or "your webinar"
        who = f"{registration.name} ({registration.email})"
        await self.notifier.notify(
            [s for s in staff if s],
            "registration",
            "New registration to approve",
            f"{who} registered for {title} and awaits your approval.",
            self.url(webinar.id),
            webinar.id,
            f"pending:{registration.id}",
            {"kind": "notice", "subject": f"To approve: {registration.name} for {title}"},
        )

    async def link_requested(self, webinar: Webinar, email: str) -> None:
        """Queue the link mail for ``email``: a background job for any address, so the request does
        the same work whether or not the address is registered (no enumeration by timing)."""
        await self.jobs.enqueue(LINK_JOB, {"webinar_id": webinar.id, "email": email})

    async def run_link(self, job: Job) -> dict[str, Any]:
        """Mail the registrant their link again (no inbox item: they asked for a mail)."""
        p = job.payload
        reg = await self.notifier.registrations.by_email(p["webinar_id"], p["email"])
        webinar = await self.webinars.find(p["webinar_id"])
        if self.notifier.email is None or webinar is None or reg is None:
            return {"sent": 0}
        if reg.get("status") not in ("approved", "pending") or not reg.get("user_id"):
            return {"sent": 0}
        title = str(webinar.get("title") or "a webinar")
        kind = "link" if reg["status"] == "approved" else "received"
        notice = Notice(
            "registration",
            f"Your link to {title}",
            "",
            self.url(p["webinar_id"]),
            p["webinar_id"],
            {"kind": kind, "subject": f"Your link to {title}"},
        )
        return {"sent": await self.notifier.email.send([reg["user_id"]], notice, f"link:{job.id}")}

    async def webinar_live(self, webinar: Webinar) -> None:
        await self._to_registrants(
            webinar.id,
            "live",
            f"{webinar.title or 'A webinar'} is live",
            "Join now.",
            f"live:{webinar.id}",
            mail={"kind": "live", "subject": f"{webinar.title or 'A webinar'} is live: join now"},
        )

    async def webinar_ended(self, webinar: Webinar) -> None:
        """The thank-you, with the recording or replay link when the host set one."""
        doc = await self.webinars.find(webinar.id) or {}
        recording = str(doc.get("recording_url") or "")
        await self._to_registrants(
            webinar.id,
            "recording",
            f"Thank you for joining {webinar.title or 'the webinar'}",
            "The recording is available." if recording else "Thank you for attending.",
            f"ended:{webinar.id}",
            url=recording or None,
            mail={"kind": "thanks", "recording_url": recording},
        )

    async def announcement_made(self, webinar: Webinar, announcement: Announcement) -> None:
        """Registrants who are in the room saw the banner live; the others get a notification."""
        absent = await self.audience.absent_registrants(webinar.id)
        await self._to_registrants(
            webinar.id,
            "announcement",
            f"Announcement: {webinar.title}".strip(),
            announcement.text[:500],
            f"announcement:{announcement.id}",
            user_ids=absent,
        )

    async def question_answered(self, webinar: Webinar, question: Question) -> None:
        if not question.user_id:
            return
        await self.notifier.notify(
            [question.user_id],
            "qa",
            "Your question was answered",
            question.text[:200],
            self.url(webinar.id),
            webinar.id,
            f"qa:{question.id}",
        )

    async def webinar_rescheduled(self, webinar: Webinar) -> None:
        await self.schedule_reminders(webinar)
        await self._to_registrants(
            webinar.id,
            "general",
            f"{webinar.title or 'A webinar'} was rescheduled",
            f"It now starts at {webinar.starts_at.isoformat()}.",
            f"rescheduled:{webinar.id}:{_epoch(webinar.starts_at)}",
            mail={"kind": "rescheduled", "subject": f"New time: {webinar.title or 'your webinar'}"},
        )

    async def webinar_cancelled(self, webinar: Webinar) -> None:
        await self.jobs.cancel({"kind": REMINDER_JOB, "payload.webinar_id": webinar.id})
        await self._to_registrants(
            webinar.id,
            "general",
            f"{webinar.title or 'A webinar'} was cancelled",
            "The host cancelled this webinar.",
            f"cancelled:{webinar.id}",
            mail={"kind": "cancelled", "subject": f"Cancelled: {webinar.title or 'your webinar'}"},
        )

    # -----------------------------------------------------------------------------------------------

    async def on_recording(self, webinar: dict[str, Any], url: str) -> str:
        """Notify the registrants of the stored ``webinar`` that its recording is at ``url``."""
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        wid = str(webinar["_id"])
        return await self._to_registrants(
            wid,
            "recording",
            f"Recording available: {webinar.get('title', '')}".strip(),
            "Watch the recording.",
            f"recording:{wid}:{digest}",
            url=url,
            mail={"kind": "recording"},
        )

    async def _to_registrants(
        self,
        webinar_id: str,
        category: str,
        title: str,
        body: str,
        key: str,
        *,
        url: str | None = None,
        user_ids: list[str] | None = None,
        mail: dict[str, Any] | None = None,
    ) -> str:
        """Queue the fan-out to ``user_ids``, or to every approved registrant when None."""
        return await self.notifier.enqueue_fanout(
            category=category,
            title=title,
            body=body,
            url=url or self.url(webinar_id),
            user_ids=user_ids,
            webinar_id=webinar_id,
            key=key,
            mail=mail,
        )

    async def schedule_reminders(self, webinar: Webinar) -> list[str]:
        """Queue the webinar's reminders for its current start (idempotent); cancel older ones."""
        wid, starts = webinar.id, webinar.starts_at
        if webinar.status in NOT_REMINDED:
            await self.jobs.cancel({"kind": REMINDER_JOB, "payload.webinar_id": wid})
            return []
        now = dt.datetime.now(dt.UTC)
        keys, ids = [], []
        for offset in self.offsets:
            run_at = starts - dt.timedelta(minutes=offset)
            if run_at < now:
                continue  # too late for this one (registered after it was due)
            key = f"reminder:{wid}:{offset}:{_epoch(starts)}"
            payload = {"webinar_id": wid, "offset": offset, "starts_at": _epoch(starts)}
            keys.append(key)
            await self.jobs.requeue(key, run_at, payload)
            ids.append(await self.jobs.enqueue(REMINDER_JOB, payload, run_at=run_at, key=key))
        await self.jobs.cancel({"kind": REMINDER_JOB, "payload.webinar_id": wid, "key": {"$nin": keys}})
        return ids

    async def run_reminder(self, job: Job) -> dict[str, Any]:
        p = job.payload
        webinar = await self.webinars.find(p["webinar_id"])
        if webinar is None:
            return {"skipped": "webinar gone"}
        if webinar.get("status") in NOT_REMINDED or _epoch(webinar["starts_at"]) != p["starts_at"]:
            return {"skipped": "webinar changed"}
        users = await self.notifier.registrant_ids(p["webinar_id"])
        starts_in = _minutes(int(p["offset"]))
        created = await self.notifier.notify(
            users,
            "reminder",
            f"{webinar.get('title', 'Your webinar')} starts in {starts_in}",
            f"Starts at {webinar['starts_at'].isoformat()}.",
            self.url(p["webinar_id"]),
            p["webinar_id"],
            job.key or f"reminder:{job.id}",
            {"kind": "reminder", "starts_in": starts_in},
        )
        return {"recipients": len(users), "created": created}
