"""The notification REST API (docs/notifications.md): inbox, unread count, read state, preferences,
mutes, the integrator send API, the recording trigger and fan-out job status."""

from __future__ import annotations

from typing import Any

from config import Settings
from handlers.base import JsonHandler
from handlers.bearer import api_key_name, bearer_claims
from realtime.auth.tokens import Claims, TokenService
from realtime.notifications.notifier import SYNC_LIMIT, Notifier
from realtime.notifications.triggers import NotificationTriggers
from realtime.notifications.views import public
from storage.errors import Kind, Refused
from storage.notifications import FILTERS
from storage.preferences import CATEGORIES, METHODS

MAX_RECIPIENTS = 100_000
ID = r"([A-Za-z0-9_-]{1,64})"  # inbox ids are ObjectIds; others answer 404
WEBINAR_ID = r"([A-Za-z0-9_.:@-]{1,128})"


class NotificationHandler(JsonHandler):
    def initialize(self, notifier: Notifier, tokens: TokenService, settings: Settings, **_: Any) -> None:
        self.notifier = notifier
        self.tokens = tokens
        self.settings_ = settings

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

    async def webinar_of_host(self, webinar_id: str, claims: Claims | None) -> dict[str, Any]:
        webinar = await self.notifier.db.webinars.find_one({"_id": webinar_id})
        if webinar is None:
            raise Refused(Kind.NOT_FOUND, "webinar_not_found", "no such webinar")
        owner = webinar.get("host_id", webinar.get("owner_id"))
        if claims is not None and owner is not None and owner != claims.user_id:
            raise Refused(Kind.FORBIDDEN, "forbidden", "you do not host this webinar")
        return webinar


def _text(body: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise Refused(Kind.INVALID, "invalid", f"{name} must be a string of 1 to {limit} characters")
    return value


class InboxHandler(NotificationHandler):
    async def get(self) -> None:
        """The caller's inbox, newest first."""
        claims = await self.user()
        filter = self.get_query_argument("filter", "all")
        if filter not in FILTERS:
            raise Refused(Kind.INVALID, "invalid", f"filter is one of {', '.join(FILTERS)}")
        try:
            limit = int(self.get_query_argument("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise Refused(Kind.INVALID, "invalid", "limit is between 1 and 100")
        cursor = self.get_query_argument("cursor", None)
        try:
            docs, next_cursor = await self.notifier.inbox.page(
                claims.user_id, filter=filter, cursor=cursor, limit=limit
            )
        except ValueError:
            raise Refused(Kind.INVALID, "invalid_cursor", "the cursor is not one this API returned") from None
        unread = await self.notifier.inbox.unread_count(claims.user_id)
        self.send({"items": [public(d) for d in docs], "next_cursor": next_cursor, "unread": unread})

    async def post(self) -> None:
        """Integrator send: to ``user_ids`` (API key only) or every approved registrant of ``webinar_id``."""
        claims = await self.integrator_or_host()
        body = self.json_body()
        category = body.get("category", "general")
        if category not in CATEGORIES:
            raise Refused(Kind.INVALID, "invalid", f"category is one of {', '.join(CATEGORIES)}")
        title = _text(body, "title", 200, required=True)
        text = _text(body, "body", 2000)
        url = _text(body, "url", 2000)
        key = self.request.headers.get("Idempotency-Key") or None
        if key is not None and len(key) > 200:
            raise Refused(Kind.INVALID, "invalid", "Idempotency-Key is at most 200 characters")
        user_ids, webinar_id = body.get("user_ids"), body.get("webinar_id")
        if (user_ids is None) == (webinar_id is None):
            raise Refused(Kind.INVALID, "invalid", "send either user_ids or webinar_id")
        if webinar_id is not None:
            if not isinstance(webinar_id, str):
                raise Refused(Kind.INVALID, "invalid", "webinar_id must be a string")
            await self.webinar_of_host(webinar_id, claims)
            job_id = await self.notifier.enqueue_fanout(
                category=category, title=title, body=text, url=url, webinar_id=webinar_id, key=key
            )
            self.send({"job_id": job_id}, 202)
            return
        if claims is not None:
            raise Refused(Kind.FORBIDDEN, "forbidden", "only integrator API keys may address users directly")
        if not isinstance(user_ids, list) or not all(
            isinstance(u, str) and 0 < len(u) <= 128 for u in user_ids
        ):
            raise Refused(Kind.INVALID, "invalid", "user_ids is a list of user ids")
        if not 0 < len(user_ids) <= MAX_RECIPIENTS:
            raise Refused(Kind.INVALID, "invalid", f"user_ids is a list of 1 to {MAX_RECIPIENTS} user ids")
        if len(user_ids) <= SYNC_LIMIT:
            created = await self.notifier.notify(user_ids, category, title, text, url, None, key)
            self.send({"created": created}, 201)
            return
        job_id = await self.notifier.enqueue_fanout(
            category=category, title=title, body=text, url=url, user_ids=user_ids, key=key
        )
        self.send({"job_id": job_id}, 202)


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
        categories = self.json_body().get("categories")
        if not isinstance(categories, dict) or not all(
            c in CATEGORIES
            and isinstance(m, dict)
            and all(k in METHODS and isinstance(v, bool) for k, v in m.items())
            for c, m in categories.items()
        ):
            raise Refused(
                Kind.INVALID, "invalid", "categories maps a category to {in_app: bool, push: bool} switches"
            )
        prefs = await self.notifier.preferences.update(claims.user_id, categories)
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
        url = _text(self.json_body(), "url", 2000, required=True)
        if not url.startswith(("https://", "http://")):
            raise Refused(Kind.INVALID, "invalid", "url must be an http(s) URL")
        webinar = await self.webinar_of_host(webinar_id, claims)
        await self.notifier.db.webinars.update_one({"_id": webinar_id}, {"$set": {"recording_url": url}})
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
    """The notification routes; ``deps``: notifier, triggers, tokens, settings."""
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
