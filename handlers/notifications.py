"""The notification REST API (docs/notifications.md): inbox, unread count, read state, preferences,
mutes, the integrator send API, the recording trigger and fan-out job status."""

from __future__ import annotations

from typing import Any

from config import Settings
from handlers.base import JsonHandler
from handlers.bearer import api_key_name, bearer_claims
from realtime.auth.tokens import Claims, TokenService
from realtime.notifications.notifier import SYNC_LIMIT, Notifier
from realtime.notifications.schemas import (
    IDEMPOTENCY_KEY,
    InboxQuery,
    NotificationSend,
    PreferencesUpdate,
    Recording,
)
from realtime.notifications.triggers import NotificationTriggers
from realtime.notifications.views import public
from realtime.schema import ident, read, value_of
from realtime.webinars.service import WebinarService
from storage.errors import Kind, Refused

ID = r"([A-Za-z0-9_-]{1,64})"  # inbox ids are ObjectIds; others answer 404
WEBINAR_ID = r"([A-Za-z0-9_.:@-]{1,128})"


class NotificationHandler(JsonHandler):
    def initialize(
        self,
        notifier: Notifier,
        tokens: TokenService,
        settings: Settings,
        webinars: WebinarService,
        **_: Any,
    ) -> None:
        self.notifier = notifier
        self.tokens = tokens
        self.settings_ = settings
        self.webinars = webinars

    async def user(self) -> Claims:
        return await bearer_claims(self, self.tokens)

    async def integrator_or_host(self) -> Claims | None:
        """None for an integrator API key, else the claims of a host; anything else is refused."""
        if api_key_name(self, self.settings_) is not None:
            return None
        claims = await bearer_claims(self, self.tokens)
        if not claims.is_host:
            raise Refused(Kind.FORBIDDEN, "forbidden", "only hosts and integrators may do this")
        return claims

    async def webinar_for(self, webinar_id: str, claims: Claims | None) -> dict[str, Any]:
        """The webinar an integrator (any) or one of its hosts or co-hosts acts on: the domain's one
        rule (``WebinarService.staff``) decides, so a host of another webinar gets 403."""
        if claims is None:
            return await self.webinars.webinars.get(ident(webinar_id, "webinar_id"))
        return (await self.webinars.staff(claims, webinar_id)).webinar


class InboxHandler(NotificationHandler):
    async def get(self) -> None:
        """The caller's inbox, newest first."""
        claims = await self.user()
        query = self.query(InboxQuery)
        try:
            docs, next_cursor = await self.notifier.inbox.page(
                claims.user_id, filter=query.filter, cursor=query.cursor, limit=query.limit
            )
        except ValueError:
            raise Refused(Kind.INVALID, "invalid_cursor", "the cursor is not one this API returned") from None
        unread = await self.notifier.inbox.unread_count(claims.user_id)
        self.send({"items": [public(d) for d in docs], "next_cursor": next_cursor, "unread": unread})

    async def post(self) -> None:
        """Integrator send: to ``user_ids`` (API key only) or every approved registrant of ``webinar_id``."""
        claims = await self.integrator_or_host()
        send = read(NotificationSend, self.json_body())
        key = self.idempotency_key()
        fields = {"category": send.category, "title": send.title, "body": send.body, "url": send.url}
        if send.webinar_id is not None:
            await self.webinar_for(send.webinar_id, claims)
            job_id = await self.notifier.enqueue_fanout(**fields, webinar_id=send.webinar_id, key=key)
            self.send({"job_id": job_id}, 202)
            return
        if claims is not None:
            raise Refused(Kind.FORBIDDEN, "forbidden", "only integrator API keys may address users directly")
        user_ids = send.user_ids or []
        if len(user_ids) <= SYNC_LIMIT:
            created = await self.notifier.notify(
                user_ids, send.category, send.title, send.body, send.url, None, key
            )
            self.send({"created": created}, 201)
            return
        job_id = await self.notifier.enqueue_fanout(**fields, user_ids=user_ids, key=key)
        self.send({"job_id": job_id}, 202)

    def idempotency_key(self) -> str | None:
        key = self.request.headers.get("Idempotency-Key") or None
        return None if key is None else value_of(IDEMPOTENCY_KEY, key, "Idempotency-Key")


class UnreadCountHandler(NotificationHandler):
    async def get(self) -> None:
        claims = await self.user()
        self.send({"unread": await self.notifier.inbox.unread_count(claims.user_id)})


class ItemActionHandler(NotificationHandler):
    async def post(self, item_id: str, action: str) -> None:
        """``read``, ``unread``, ``archive`` or ``unarchive`` one item of the caller's."""
        claims = await self.user()
        if action in ("read", "unread"):
            item = await self.notifier.set_read(claims.user_id, item_id, action == "read")
        else:
            item = await self.notifier.archive(claims.user_id, item_id, action == "archive")
        if item is None:
            raise Refused(Kind.NOT_FOUND, "notification_not_found", "no such notification")
        self.send({"item": item, "unread": await self.notifier.inbox.unread_count(claims.user_id)})


class ReadAllHandler(NotificationHandler):
    async def post(self) -> None:
        claims = await self.user()
        changed = await self.notifier.mark_all_read(claims.user_id)
        self.send({"changed": changed, "unread": 0})


class PreferencesHandler(NotificationHandler):
    async def get(self) -> None:
        claims = await self.user()
        self.send((await self.notifier.preferences.get(claims.user_id)).public())

    async def patch(self) -> None:
        """Body ``{"categories": {"reminder": {"push": false}, ...}}``; unnamed switches keep their value."""
        claims = await self.user()
        update = read(PreferencesUpdate, self.json_body())
        prefs = await self.notifier.preferences.update(claims.user_id, dict(update.categories))
        self.send(prefs.public())


class MuteHandler(NotificationHandler):
    async def put(self, webinar_id: str) -> None:
        claims = await self.user()
        self.send((await self.notifier.preferences.mute(claims.user_id, webinar_id, True)).public())

    async def delete(self, webinar_id: str) -> None:
        claims = await self.user()
        self.send((await self.notifier.preferences.mute(claims.user_id, webinar_id, False)).public())


class RecordingHandler(NotificationHandler):
    def initialize(self, triggers: NotificationTriggers, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(**kwargs)
        self.triggers = triggers

    async def post(self, webinar_id: str) -> None:
        """Store the recording URL on the webinar and notify its registrants (background job)."""
        claims = await self.integrator_or_host()
        url = read(Recording, self.json_body()).url
        webinar = await self.webinar_for(webinar_id, claims)
        await self.webinars.webinars.set_recording(webinar["_id"], url)
        job_id = await self.triggers.on_recording(webinar, url)
        self.send({"recording_url": url, "job_id": job_id}, 202)


class JobStatusHandler(NotificationHandler):
    async def get(self, job_id: str) -> None:
        await self.integrator_or_host()
        job = await self.notifier.jobs.get(job_id)
        if job is None or job["kind"] != "notify.fanout":
            raise Refused(Kind.NOT_FOUND, "job_not_found", "no such job")
        self.send(
            {"id": job_id, "status": job["status"], "attempts": job["attempts"], "result": job.get("result")}
        )


def routes(**deps: Any) -> list[tuple[str, type, dict[str, Any]]]:
    """The notification routes; ``deps``: notifier, triggers, tokens, settings, webinars."""
    return [
        (r"/api/notifications", InboxHandler, deps),
        (r"/api/notifications/unread-count", UnreadCountHandler, deps),
        (r"/api/notifications/read-all", ReadAllHandler, deps),
        (r"/api/notifications/preferences", PreferencesHandler, deps),
        (rf"/api/notifications/mutes/{WEBINAR_ID}", MuteHandler, deps),
        (rf"/api/notifications/{ID}/(read|unread|archive|unarchive)", ItemActionHandler, deps),
        (rf"/api/webinars/{WEBINAR_ID}/recording", RecordingHandler, deps),
        (rf"/api/notification-jobs/{ID}", JobStatusHandler, deps),
    ]
