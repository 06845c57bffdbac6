"""What the webinar actions notify, and the reminders before a webinar starts.

The webinar service calls these hooks after its own write succeeded. Each uses an idempotency key
derived from the event (registration id, announcement id, start time...), so a hook called twice
notifies once. Fan-outs to every registrant run as background jobs.

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
from collections.abc import Awaitable, Callable
from typing import Any

from realtime.notifications.notifier import Notifier
from storage.jobs import Job, JobQueue
from storage.webinars import Webinars

log = logging.getLogger("realtime.notifications.notifier")

REMINDER_JOB = "reminder"
NOT_REMINDED = ("cancelled", "ended", "live")


def _id(doc: dict[str, Any]) -> str:
    """Hooks get the public dicts (``id``); stored documents have ``_id``."""
    return str(doc["_id"] if "_id" in doc else doc["id"])


def _when(value: dt.datetime | str) -> dt.datetime:
    """A webinar's ``starts_at``: an aware datetime, or the ISO text of the public dict."""
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def _epoch(when: dt.datetime | str) -> int:
    return int(_when(when).timestamp())


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
        self, notifier: Notifier, jobs: JobQueue, *, reminder_offsets: tuple[int, ...], base_url: str
    ) -> None:
        self.notifier = notifier
        self.jobs = jobs
        self.webinars = Webinars(notifier.db)
        self.offsets = reminder_offsets
        self.base_url = base_url.rstrip("/")
        # Set by the wiring when the webinar domain is present: user ids of approved registrants
        # not in the room right now (announcements reach the others live).
        self.absent_registrants: Callable[[str], Awaitable[list[str]]] | None = None

    def url(self, webinar: dict[str, Any]) -> str:
        return f"{self.base_url}/webinars/{_id(webinar)}"

    async def on_registration(
        self, webinar: dict[str, Any], registration: dict[str, Any], status: str
    ) -> None:
        user_id = registration.get("user_id")
        title = webinar.get("title", "a webinar")
        if status == "approved":
            await self.schedule_reminders(webinar)
            heading, body = "Registration confirmed", f"You are registered for {title}."
        elif status == "pending":
            heading, body = (
                "Registration received",
                f"Your registration for {title} awaits the host's approval.",
            )
        else:
            heading, body = "Registration update", f"Your registration for {title} is {status}."
        if user_id:
            await self.notifier.notify(
                [user_id],
                "registration",
                heading,
                body,
                self.url(webinar),
                _id(webinar),
                f"registration:{_id(registration)}:{status}",
            )

    async def on_live(self, webinar: dict[str, Any]) -> None:
        await self._to_registrants(
            webinar,
            "live",
            f"{webinar.get('title', 'A webinar')} is live",
            "Join now.",
            f"live:{_id(webinar)}",
        )

    async def on_announcement(self, webinar: dict[str, Any], announcement: dict[str, Any]) -> None:
        """Registrants who are in the room saw the banner live; the others get a notification."""
        text = str(announcement.get("text") or announcement.get("body") or "")
        absent = await self.absent_registrants(_id(webinar)) if self.absent_registrants else None
        await self._to_registrants(
            webinar,
            "announcement",
            f"Announcement: {webinar.get('title', '')}".strip(),
            text[:500],
            f"announcement:{_id(announcement)}",
            user_ids=absent,
        )

    async def on_question_answered(self, webinar: dict[str, Any], question: dict[str, Any]) -> None:
        asker = question.get("user_id") or question.get("author_id")
        if not asker:
            return
        text = str(question.get("text") or question.get("body") or "")
        await self.notifier.notify(
            [asker],
            "qa",
            "Your question was answered",
            text[:200],
            self.url(webinar),
            _id(webinar),
            f"qa:{_id(question)}",
        )

    async def on_rescheduled(self, webinar: dict[str, Any]) -> None:
        await self.schedule_reminders(webinar)
        starts = _when(webinar["starts_at"])
        await self._to_registrants(
            webinar,
            "general",
            f"{webinar.get('title', 'A webinar')} was rescheduled",
            f"It now starts at {starts.isoformat()}.",
            f"rescheduled:{_id(webinar)}:{_epoch(starts)}",
        )

    async def on_cancelled(self, webinar: dict[str, Any]) -> None:
        await self.jobs.cancel({"kind": REMINDER_JOB, "payload.webinar_id": _id(webinar)})
        await self._to_registrants(
            webinar,
            "general",
            f"{webinar.get('title', 'A webinar')} was cancelled",
            "The host cancelled this webinar.",
            f"cancelled:{_id(webinar)}",
        )

    async def on_registration_cancelled(self, webinar: dict[str, Any], registration: dict[str, Any]) -> None:
        """Nothing is queued per registration: reminders read the approved registrations when they
        fire, so this registration simply is not reminded. Kept as a hook for symmetry."""
        return None

    async def on_recording(self, webinar: dict[str, Any], url: str) -> str:
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        return await self._to_registrants(
            webinar,
            "recording",
            f"Recording available: {webinar.get('title', '')}".strip(),
            "Watch the recording.",
            f"recording:{_id(webinar)}:{digest}",
            url=url,
        )

    async def _to_registrants(
        self,
        webinar: dict[str, Any],
        category: str,
        title: str,
        body: str,
        key: str,
        *,
        url: str | None = None,
        user_ids: list[str] | None = None,
    ) -> str:
        """Queue the fan-out to ``user_ids``, or to every approved registrant when None."""
        return await self.notifier.enqueue_fanout(
            category=category,
            title=title,
            body=body,
            url=url or self.url(webinar),
            user_ids=user_ids,
            webinar_id=_id(webinar),
            key=key,
        )

    async def schedule_reminders(self, webinar: dict[str, Any]) -> list[str]:
        """Queue the webinar's reminders for its current start (idempotent); cancel older ones."""
        wid, starts = _id(webinar), _when(webinar["starts_at"])
        if webinar.get("status") in NOT_REMINDED:
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
        created = await self.notifier.notify(
            users,
            "reminder",
            f"{webinar.get('title', 'Your webinar')} starts in {_minutes(int(p['offset']))}",
            f"Starts at {webinar['starts_at'].isoformat()}.",
            self.url(webinar),
            p["webinar_id"],
            job.key or f"reminder:{job.id}",
        )
        return {"recipients": len(users), "created": created}
