"""Web Push subscription API and the service worker script."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

from handlers.base import JsonHandler
from handlers.bearer import bearer_claims
from realtime.auth.tokens import TokenService
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


def _endpoint(body: dict[str, Any]) -> str:
    endpoint = body.get("endpoint")
    if (
        not isinstance(endpoint, str)
        or not endpoint.startswith("https://")
        and not endpoint.startswith("http://")
    ):
        raise Refused(Kind.INVALID, "invalid", "endpoint must be the subscription's push service URL")
    if len(endpoint) > 2000:
        raise Refused(Kind.INVALID, "invalid", "endpoint is too long")
    return endpoint


class SubscriptionsHandler(PushHandler):
    async def post(self) -> None:
        """Body: the browser's ``PushSubscription.toJSON()`` ({endpoint, keys: {p256dh, auth}})."""
        claims = await bearer_claims(self, self.tokens)
        body = self.json_body()
        endpoint = _endpoint(body)
        keys = body.get("keys")
        if not isinstance(keys, dict) or not all(
            isinstance(keys.get(k), str) and 0 < len(keys[k]) <= 200 for k in ("p256dh", "auth")
        ):
            raise Refused(Kind.INVALID, "invalid", "keys must hold the p256dh and auth strings")
        sid = await self.subscriptions.add(claims.user_id, endpoint, keys["p256dh"], keys["auth"])
        self.send({"id": sid}, 201)

    async def delete(self) -> None:
        """Body ``{endpoint}``: forget the caller's subscription (the browser unsubscribed)."""
        claims = await bearer_claims(self, self.tokens)
        if not await self.subscriptions.remove(_endpoint(self.json_body()), claims.user_id):
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
