"""Web Push (RFC 8030 delivery, RFC 8291 aes128gcm encryption, RFC 8292 VAPID) with pywebpush.

Sending is a background job (``push.send``): one job carries one message and the subscriptions to
send it to. Per subscription: 2xx is delivered; 404/410 means the browser unsubscribed, so the
subscription is deleted; 429, 5xx and network errors are retried by a new job after a backoff
(``Retry-After`` when the push service gives one), up to ``MAX_ATTEMPTS``; other answers are
dropped with a log line. At most ``concurrency`` requests are in flight per process.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
from typing import Any

import aiohttp
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid02
from pywebpush import WebPushException, webpush_async

from realtime import metrics
from storage.jobs import Job, JobQueue
from storage.push_subscriptions import PushSubscriptions

log = logging.getLogger("realtime.notifications.webpush")

JOB_KIND = "push.send"
MAX_ATTEMPTS = 5
PUSH_TTL = 24 * 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def generate_vapid_key() -> str:
    """A new VAPID private key as base64url of the raw 32-byte P-256 scalar."""
    vapid = Vapid02()
    vapid.generate_keys()
    return b64url(vapid.private_key.private_numbers().private_value.to_bytes(32, "big"))


def load_vapid(key: str) -> Vapid02:
    """A VAPID signer from a PEM or a base64url (raw or DER) private key."""
    key = key.strip()
    if key.startswith("-----BEGIN"):
        return Vapid02.from_pem(key.encode())
    return Vapid02.from_string(key)


def public_key_of(vapid: Vapid02) -> str:
    """The ``applicationServerKey`` a browser subscribes with (uncompressed point, base64url)."""
    raw = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(raw)


class PushSender:
    """Encrypts and sends one message to one subscription; holds one HTTP session per process."""

    def __init__(self, vapid: Vapid02, subject: str, *, concurrency: int = 16, timeout: float = 10) -> None:
        self.vapid = vapid
        self.subject = subject
        self.public_key = public_key_of(vapid)
        self.timeout = timeout
        self._slots = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None

    async def send(self, subscription: dict[str, Any], message: dict[str, Any]) -> tuple[int, float | None]:
        """POST ``message`` to ``subscription``; the HTTP status (0: network error) and Retry-After."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        info = {"endpoint": subscription["endpoint"], "keys": subscription["keys"]}
        async with self._slots:
            try:
                resp = await webpush_async(
                    info,
                    json.dumps(message, separators=(",", ":")),
                    vapid_private_key=self.vapid,
                    vapid_claims={"sub": self.subject},  # a fresh dict: pywebpush writes aud/exp in it
                    content_encoding="aes128gcm",
                    timeout=self.timeout,
                    ttl=PUSH_TTL,
                    aiohttp_session=self._session,
                )
            except WebPushException as exc:
                status = exc.response.status if exc.response is not None else 0
                return status, _retry_after(exc.response)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("push to %s failed: %s", info["endpoint"][:60], exc)
                return 0, None
        return int(resp.status), None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _retry_after(resp: Any) -> float | None:
    value = getattr(resp, "headers", {}).get("Retry-After") if resp is not None else None
    try:
        return min(float(value), 3600.0) if value else None
    except ValueError:
        return None


class PushDelivery:
    """The ``push.send`` job: delivers one message to a set of subscriptions."""

    def __init__(self, subscriptions: PushSubscriptions, sender: PushSender, jobs: JobQueue) -> None:
        self.subscriptions = subscriptions
        self.sender = sender
        self.jobs = jobs

    async def enqueue(
        self,
        user_ids: list[str],
        message: dict[str, Any],
        *,
        key: str | None = None,
        urls: dict[str, str] | None = None,
    ) -> str | None:
        """Queue ``message`` for every subscription of ``user_ids``; None when none has one.
        ``urls``: a user's own link (their join link, a host's console) in place of ``message["url"]``."""
        subs = await self.subscriptions.for_users(user_ids)
        if not subs:
            return None
        payload = {
            "subscription_ids": [s["_id"] for s in subs],
            "message": message,
            "urls": urls or {},
            "attempt": 1,
        }
        return await self.jobs.enqueue(JOB_KIND, payload, key=key)

    async def run(self, job: Job) -> dict[str, Any]:
        subs = await self.subscriptions.by_ids(list(job.payload["subscription_ids"]))
        message = job.payload["message"]
        urls: dict[str, str] = job.payload.get("urls") or {}

        def to(sub: dict[str, Any]) -> dict[str, Any]:
            own = urls.get(sub.get("user_id", ""))
            return {**message, "url": own} if own else message

        results = await asyncio.gather(*(self.sender.send(s, to(s)) for s in subs))
        sent, gone, retry, dropped = 0, 0, [], 0
        wait: float | None = None  # the longest Retry-After the push service asked for
        for sub, (status, retry_after) in zip(subs, results, strict=True):
            if 200 <= status < 300:
                sent += 1
            elif status in (404, 410):
                gone += 1
                await self.subscriptions.remove(sub["endpoint"])
            elif status in (0, 429) or status >= 500:
                retry.append(sub["_id"])
                if retry_after is not None:
                    wait = max(wait or 0.0, retry_after)
            else:
                dropped += 1
                log.warning("push service refused a message with %d; dropped", status)
        metrics.push_results(sent, gone, len(retry), dropped)
        attempt = int(job.payload.get("attempt", 1))
        if retry and attempt < MAX_ATTEMPTS:
            delay = wait if wait is not None else min(2.0**attempt, 600.0)
            run_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
            payload = {"subscription_ids": retry, "message": message, "urls": urls, "attempt": attempt + 1}
            await self.jobs.enqueue(JOB_KIND, payload, run_at=run_at, key=f"{job.id}:retry")
        return {"sent": sent, "gone": gone, "retry": len(retry), "dropped": dropped}
