"""Web Push subscription API and the service worker script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

from handlers.base import JsonHandler
from handlers.bearer import bearer_claims
from realtime.auth.tokens import TokenService
from realtime.notifications.schemas import PushEndpoint, PushSubscription
from realtime.schema import read
from storage.errors import Kind, Refused
from storage.push_subscriptions import PushSubscriptions

STATIC = Path(__file__).resolve().parent.parent / "static"


class PushHandler(JsonHandler):
    def initialize(self, subscriptions: PushSubscriptions, tokens: TokenService, public_key: str) -> None:
        self.subscriptions = subscriptions
        self.tokens = tokens
        self.public_key = public_key


class VapidKeyHandler(PushHandler):
    def get(self) -> None:
        """The ``applicationServerKey`` for ``pushManager.subscribe`` (base64url, uncompressed P-256)."""
        self.send({"public_key": self.public_key})


class SubscriptionsHandler(PushHandler):
    async def post(self) -> None:
        """Body: the browser's ``PushSubscription.toJSON()`` ({endpoint, keys: {p256dh, auth}})."""
        claims = await bearer_claims(self, self.tokens)
        sub = read(PushSubscription, self.json_body())
        sid = await self.subscriptions.add(claims.user_id, sub.endpoint, sub.keys.p256dh, sub.keys.auth)
        self.send({"id": sid}, 201)

    async def delete(self) -> None:
        """Body ``{endpoint}``: forget the caller's subscription (the browser unsubscribed)."""
        claims = await bearer_claims(self, self.tokens)
        endpoint = read(PushEndpoint, self.json_body()).endpoint
        if not await self.subscriptions.remove(endpoint, claims.user_id):
            raise Refused(Kind.NOT_FOUND, "subscription_not_found", "no such subscription of yours")
        self.set_status(204)
        self.finish()


class ServiceWorkerHandler(tornado.web.StaticFileHandler):
    """``/sw.js`` from static/, at the site root so its scope covers every page."""

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Service-Worker-Allowed", "/")
        self.set_header("Cache-Control", "no-cache")


def routes(**deps: Any) -> list[tuple[str, type, dict[str, Any]]]:
    """``deps``: subscriptions, tokens, public_key."""
    return [
        (r"/api/push/vapid-public-key", VapidKeyHandler, deps),
        (r"/api/push/subscriptions", SubscriptionsHandler, deps),
        (r"/(sw\.js)", ServiceWorkerHandler, {"path": str(STATIC)}),
    ]
