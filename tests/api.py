"""Small HTTP helpers shared by the webinar API tests (a real app over real HTTP)."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from tornado.httpclient import AsyncHTTPClient


class Api:
    def __init__(self, http_client: AsyncHTTPClient, base_url: str) -> None:
        self.http = http_client
        self.base = base_url

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = None, raw: bool = False
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        elif method in ("POST", "PUT", "PATCH"):
            payload = b""
        resp = await self.http.fetch(
            self.base + path,
            method=method,
            body=payload,
            headers=headers,
            raise_error=False,
            allow_nonstandard_methods=True,
        )
        if raw:
            return resp.code, resp.body.decode()
        return resp.code, json.loads(resp.body) if resp.body else None

    async def host(self, email: str | None = None, name: str = "Hanna Host") -> dict[str, Any]:
        email = email or f"host-{secrets.token_hex(4)}@example.com"
        code, body = await self.call(
            "POST", "/api/auth/signup", {"email": email, "password": "correct horse battery", "name": name}
        )
        assert code == 201, body
        return body

    async def webinar(self, token: str, **fields: Any) -> dict[str, Any]:
        body = {
            "title": "Launch day",
            "starts_at": future(),
            "timezone": "Europe/Berlin",
            "duration_minutes": 60,
            **fields,
        }
        code, doc = await self.call("POST", "/api/webinars", body, token)
        assert code == 201, doc
        return doc

    async def register(self, webinar_id: str, name: str = "Ada", email: str | None = None) -> dict[str, Any]:
        email = email or f"{name.lower()}-{secrets.token_hex(3)}@example.com"
        code, reg = await self.call(
            "POST", f"/api/webinars/{webinar_id}/registrations", {"name": name, "email": email}
        )
        assert code == 201, reg
        return reg

    async def live_webinar(self, **fields: Any) -> tuple[str, str, dict[str, Any]]:
        """A host token, a webinar that is live, and one registered attendee's join token."""
        host = await self.host()
        token = host["access_token"]
        w = await self.webinar(token, **fields)
        reg = await self.register(w["id"])
        code, _ = await self.call("POST", f"/api/webinars/{w['id']}/live", token=token)
        assert code == 200
        return token, join_token(reg), w


def join_token(reg: dict[str, Any]) -> str:
    return reg["join_url"].split("#token=", 1)[1]


def future(hours: int = 2) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0).isoformat()
