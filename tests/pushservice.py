"""A Web Push service on loopback, for tests: it checks what a real one checks and decrypts the
message as the browser would.

``POST /push/<subscription>``: verifies the VAPID ``Authorization`` header (RFC 8292: signature,
``aud`` = this origin, ``exp`` in the future, ``sub``), decrypts the aes128gcm body (RFC 8291) with the
subscription's private key and auth secret using http_ece, records it and answers 201, or the
statuses queued for that subscription with ``answer(...)`` (410, 429, 500...).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
import tornado.httpserver
import tornado.web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from tornado.testing import bind_unused_port


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One browser's push subscription: its keys stay here, the server gets ``subscription``."""

    name: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def subscription(self) -> dict[str, Any]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": self.endpoint, "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}


@dataclass
class Delivery:
    browser: str
    message: dict[str, Any]
    vapid_key: str
    headers: dict[str, str]


class PushService:
    def __init__(self) -> None:
        self.browsers: dict[str, Browser] = {}
        self.answers: dict[str, list[int]] = {}
        self.received: list[Delivery] = []
        self.attempts: list[tuple[str, int]] = []
        self._changed = asyncio.Condition()
        self.server: tornado.httpserver.HTTPServer | None = None

    def start(self) -> None:
        sock, self.port = bind_unused_port()
        app = tornado.web.Application([(r"/push/([a-z0-9-]+)", _PushHandler, {"service": self})])
        self.server = tornado.httpserver.HTTPServer(app)
        self.server.add_sockets([sock])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def browser(self, name: str) -> Browser:
        self.browsers[name] = Browser(name, f"{self.origin}/push/{name}")
        return self.browsers[name]

    def answer(self, name: str, *statuses: int) -> None:
        """Answer the next requests for ``name`` with ``statuses`` (then 201 again)."""
        self.answers.setdefault(name, []).extend(statuses)

    async def wait_for(self, predicate: Any, timeout: float = 15) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(wait(), timeout)

    async def record(self, name: str, status: int, delivery: Delivery | None) -> None:
        async with self._changed:
            self.attempts.append((name, status))
            if delivery is not None:
                self.received.append(delivery)
            self._changed.notify_all()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


class _PushHandler(tornado.web.RequestHandler):
    def initialize(self, service: PushService) -> None:
        self.service = service

    def check_xsrf_cookie(self) -> None:
        return None

    async def post(self, name: str) -> None:
        browser = self.service.browsers.get(name)
        if browser is None:
            self.set_status(404)
            return
        vapid_key = self._check_vapid()
        if self.request.headers.get("Content-Encoding") != "aes128gcm":
            raise tornado.web.HTTPError(415, "expected aes128gcm")
        if not self.request.headers.get("TTL"):
            raise tornado.web.HTTPError(400, "TTL header is required (RFC 8030)")
        plain = http_ece.decrypt(
            self.request.body, private_key=browser.private_key, auth_secret=browser.auth, version="aes128gcm"
        )
        queued = self.service.answers.get(name) or []
        status = queued.pop(0) if queued else 201
        delivery = None
        if status == 201:
            delivery = Delivery(name, json.loads(plain), vapid_key, dict(self.request.headers))
        if status == 429:
            self.set_header("Retry-After", "0")
        await self.service.record(name, status, delivery)
        self.set_status(status)

    def _check_vapid(self) -> str:
        auth = self.request.headers.get("Authorization", "")
        if not auth.startswith("vapid ") or not Vapid02.verify(auth):
            raise tornado.web.HTTPError(401, "bad VAPID signature")
        parts = dict(p.split("=", 1) for p in auth[len("vapid ") :].split(","))
        claims = jwt.decode(parts["t"], options={"verify_signature": False})  # verified just above
        if claims.get("aud") != self.service.origin:
            raise tornado.web.HTTPError(403, "VAPID aud is not this push service")
        if not claims.get("sub") or int(claims.get("exp", 0)) <= time.time():
            raise tornado.web.HTTPError(403, "VAPID claims need sub and a future exp")
        return parts["k"]
