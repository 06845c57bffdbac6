"""Notifications: store in each recipient's inbox, publish live on their personal channel, push.

Delivery contract:
- A notification is stored once per user: the inbox has a unique (user, key) index, and the key is
  the caller's idempotency key (a retried job, a double click, two processes: one item). Only newly
  stored items are published, so a retry does not publish twice; an item stored by an attempt that
  died before publishing is published by the retry (at least once: should the crash fall between
  publish and ``mark_batch_published``, the item goes out twice with the same ``id``; clients drop
  the second).
- Live messages go out durably on ``user:<id>`` (``notification``: the inbox item, plus the user's
  ``unread`` count for batches of up to ``COUNT_LIMIT`` users; without it a tab adds one), so a
  tab that was offline gets them once on reconnect from the real-time layer's history.
  Read/unread/archive changes publish ``notification.unread`` ({"unread": n, "changed": item})
  so every tab's badge follows.
- Recipients are handled in chunks of ``chunk`` users, ``CHUNKS_AT_ONCE`` at a time (1): one
  ``insert_many`` into the inbox, one ``publish_many`` and one push job per chunk (lookups by user
  go in ``$in`` groups, storage/mongo.py). Chunks are independent (distinct users, their own
  batch key), so their order does not matter; each personal channel's seqs stay in order.
- Preferences: a category switched off for ``in_app`` is not stored or published; switched off for
  ``push`` is not pushed, for ``email`` not mailed; a muted webinar gets none of them.
- Email (``mail_compose.py``, ``mail.py``): one batch per chunk, keyed by the chunk's key, so a
  retried chunk mails nobody twice; each recipient's mail is composed for them (their link, their
  time zone). ``mail`` names the mail's kind and extra fields (``mail_compose.KINDS``).
- Links: a notification about a webinar whose ``url`` is the webinar's page carries each
  recipient's own link instead (``realtime/webinars/links.py``): registrants their join link, hosts
  their console, so no inbox item leads a registered person to the registration form.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from realtime.engine.channels import personal
from realtime.notifications.mail_compose import MailComposer, Notice
from realtime.notifications.views import public
from realtime.notifications.webpush import PushDelivery
from realtime.webinars.links import JoinLinks
from storage.batch import gather_bounded
from storage.jobs import Job, JobQueue
from storage.mongo import Database
from storage.notifications import Inbox
from storage.preferences import CATEGORIES, PreferenceStore
from storage.registrations import Registrations
from storage.webinars import Webinars

FANOUT_JOB = "notify.fanout"
SYNC_LIMIT = 100  # larger integrator requests are queued as a background fan-out
COUNT_LIMIT = 100  # live messages of larger batches carry no unread count (one query per user set)
# Chunks of one fan-out in flight together. Two overlap one chunk's app work with another's
# database writes, but the database is the bottleneck: measured no faster (bench/README.md), and
# each chunk in flight is app work competing with the live rooms for the event loop.
CHUNKS_AT_ONCE = 1


def _live(doc: dict[str, Any], unread: int | None) -> dict[str, Any]:
    item = public(doc)
    if unread is not None:
        item["unread"] = unread
    return item


class Publisher(Protocol):
    """The real-time hub's publish API (realtime/engine/hub.py)."""

    async def publish(
        self, channel: str, type: str, data: dict[str, Any], *, durable: bool = True
    ) -> int | None: ...

    async def publish_many(
        self, items: list[tuple[str, str, dict[str, Any]]], *, durable: bool = True
    ) -> list[int | None]: ...


class Notifier:
    def __init__(
        self,
        db: Database,
        publisher: Publisher,
        jobs: JobQueue,
        push: PushDelivery | None = None,
        *,
        email: MailComposer | None = None,
        links: JoinLinks | None = None,
        chunk: int = 1000,
    ) -> None:
        self.db = db
        self.inbox = Inbox(db)
        self.registrations = Registrations(db, Webinars(db))
        self.preferences = PreferenceStore(db)
        self.publisher = publisher
        self.jobs = jobs
        self.push = push
        self.email = email
        self.links = links
        self.webinars = Webinars(db)
        self.chunk = chunk

    async def notify(
        self,
        user_ids: Iterable[str],
        category: str,
        title: str,
        body: str,
        url: str,
        webinar_id: str | None = None,
        idempotency_key: str | None = None,
        mail: dict[str, Any] | None = None,
    ) -> int:
        """Notify every user in ``user_ids`` now; returns how many inbox items were created."""
        if category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}")
        users = list(dict.fromkeys(u for u in user_ids if u))
        key = idempotency_key or secrets.token_hex(12)

        def chunk(start: int) -> Callable[[], Awaitable[int]]:
            batch, batch_key = users[start : start + self.chunk], f"{key}:{start // self.chunk}"
            args = (batch, category, title, body, url, webinar_id, key, batch_key, mail)
            return lambda: self._notify_batch(*args)

        # A failed chunk cancels the others; the job's retry redoes what they did not finish.
        starts = range(0, len(users), self.chunk)
        return sum(await gather_bounded([chunk(start) for start in starts], CHUNKS_AT_ONCE))

    async def _notify_batch(
        self,
        users: list[str],
        category: str,
        title: str,
        body: str,
        url: str,
        webinar_id: str | None,
        key: str,
        batch_key: str,
        mail: dict[str, Any] | None = None,
    ) -> int:
        prefs = await self.preferences.get_many(users)
        urls = await self._personal_urls(users, webinar_id, url)
        now = dt.datetime.now(dt.UTC)
        docs: list[dict[str, Any]] = [
            {
                "user_id": u,
                "key": key,
                "category": category,
                "title": title,
                "body": body,
                "url": urls.get(u, url),
                "webinar_id": webinar_id,
                "created_at": now,
            }
            for u in users
            if prefs[u].wants(category, "in_app", webinar_id)
        ]
        stored = await self.inbox.insert_many(docs)
        live = stored
        if len(stored) < len(docs) and not await self.inbox.batch_published(batch_key):
            # A retry of a batch whose live messages never went out: publish what was stored then.
            new = {d["_id"] for d in stored}
            again = [d["user_id"] for d in docs if d["_id"] not in new]
            live = stored + await self.inbox.existing(key, again)
        if live:
            counts: dict[str, int] = {}
            if len(live) <= COUNT_LIMIT:
                counts = await self.inbox.unread_counts([d["user_id"] for d in live])
            await self.publisher.publish_many(
                [(personal(d["user_id"]), "notification", _live(d, counts.get(d["user_id"]))) for d in live]
            )
        await self.inbox.mark_batch_published(batch_key)
        if self.push is not None:
            fresh = {d["user_id"] for d in live}
            in_app = {d["user_id"] for d in docs}
            targets = [
                u
                for u in users
                if prefs[u].wants(category, "push", webinar_id) and (u in fresh or u not in in_app)
            ]
            if targets:
                message = {"title": title, "body": body, "url": url, "category": category, "tag": key}
                own = {u: urls[u] for u in targets if u in urls}  # each recipient opens their own link
                await self.push.enqueue(targets, message, key=f"push:{batch_key}", urls=own)
        if self.email is not None:
            # Every recipient who wants it: the mail's own key makes a retried batch send nothing twice.
            mailed = [u for u in users if prefs[u].wants(category, "email", webinar_id)]
            if mailed:
                notice = Notice(category, title, body, url, webinar_id, dict(mail or {}))
                await self.email.send(mailed, notice, f"mail:{batch_key}", urls)
        return len(stored)

    async def _personal_urls(self, users: list[str], webinar_id: str | None, url: str) -> dict[str, str]:
        """Each user's own link when ``url`` is the webinar's public page; else nothing to change."""
        if self.links is None or webinar_id is None or url != self.links.page(webinar_id):
            return {}
        webinar = await self.webinars.find(webinar_id)
        if webinar is None:
            return {}
        return await self.links.for_users(self.registrations, webinar, users)

    async def enqueue_fanout(
        self,
        *,
        category: str,
        title: str,
        body: str,
        url: str,
        user_ids: list[str] | None = None,
        webinar_id: str | None = None,
        key: str | None = None,
        run_at: dt.datetime | None = None,
        mail: dict[str, Any] | None = None,
    ) -> str:
        """Queue a background fan-out to ``user_ids``, or else to every approved registrant of
        ``webinar_id`` (resolved when the job runs). The job id is returned; with ``key`` a second
        call returns the first job."""
        if category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}")
        payload = {
            "category": category,
            "title": title,
            "body": body,
            "url": url,
            "user_ids": user_ids,
            "webinar_id": webinar_id,
            "key": key,
            "mail": mail,
        }
        return await self.jobs.enqueue(
            FANOUT_JOB, payload, key=f"fanout:{key}" if key else None, run_at=run_at
        )

    async def run_fanout(self, job: Job) -> dict[str, Any]:
        p = job.payload
        users = p.get("user_ids")
        if users is None:
            users = await self.registrant_ids(p["webinar_id"])
        created = await self.notify(
            users,
            p["category"],
            p["title"],
            p["body"],
            p["url"],
            p.get("webinar_id"),
            p.get("key") or job.id,
            p.get("mail"),
        )
        return {"recipients": len(users), "created": created}

    async def registrant_ids(self, webinar_id: str) -> list[str]:
        """User ids of the webinar's approved registrations (registrations without a user skipped)."""
        return await self.registrations.approved_user_ids(webinar_id)

    async def set_read(self, user_id: str, item_id: str, read: bool) -> dict[str, Any] | None:
        return await self._changed(user_id, await self.inbox.set_read(user_id, item_id, read))

    async def archive(self, user_id: str, item_id: str, archived: bool = True) -> dict[str, Any] | None:
        return await self._changed(user_id, await self.inbox.archive(user_id, item_id, archived))

    async def mark_all_read(self, user_id: str) -> int:
        changed = await self.inbox.mark_all_read(user_id)
        await self.publish_unread(user_id, None)
        return changed

    async def _changed(self, user_id: str, doc: dict[str, Any] | None) -> dict[str, Any] | None:
        if doc is None:
            return None
        item = public(doc)
        await self.publish_unread(user_id, item)
        return item

    async def publish_unread(self, user_id: str, changed: dict[str, Any] | None) -> int:
        unread = await self.inbox.unread_count(user_id)
        data: dict[str, Any] = {"unread": unread}
        if changed is not None:
            data["changed"] = changed
        await self.publisher.publish(personal(user_id), "notification.unread", data)
        return unread
