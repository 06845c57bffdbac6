"""Host accounts: sign-up, login, refresh (rotating), logout, and who am I."""

from __future__ import annotations

from typing import Any

from handlers.api import ApiHandler
from realtime.auth.views import public_user
from storage import validate as v
from storage.errors import Kind, Refused


class _TokenIssuer(ApiHandler):
    async def tokens_for(self, user: dict[str, Any], family: str | None = None) -> dict[str, Any]:
        s = self.deps.settings
        access = self.deps.tokens.issue(user["_id"], role="host", name=user.get("name", ""))
        refresh = await self.deps.accounts.issue_refresh(user["_id"], s.refresh_token_ttl, family)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": s.access_token_ttl,
            "refresh_token": refresh,
            "user": public_user(user),
        }


class SignupHandler(_TokenIssuer):
    async def post(self) -> None:
        if not self.deps.settings.signup_open:
            raise Refused(
                Kind.FORBIDDEN, "signup_closed", "sign-up is closed; ask an administrator for an account"
            )
        body = self.body()
        v_body = await self.call(_signup_fields(body))
        user = await self.call(self.deps.accounts.create_host(*v_body))
        self.send(await self.tokens_for(user), 201)


async def _signup_fields(body: dict[str, Any]) -> tuple[str, str, str]:
    v.known_fields(body, {"email", "password", "name"})
    return v.email(body), v.password(body), v.text(body, "name", max_len=100)


class LoginHandler(_TokenIssuer):
    async def post(self) -> None:
        body = self.body()
        email, password = await self.call(_login_fields(body))
        key = f"login:{email}:{self.request.remote_ip}"
        if not await self.deps.accounts.hit(key, self.deps.settings.login_rate, 60):
            raise Refused(Kind.RATE_LIMITED, "rate_limited", "too many login attempts; wait a minute")
        user = await self.call(self.deps.accounts.authenticate(email, password))
        self.send(await self.tokens_for(user))


async def _login_fields(body: dict[str, Any]) -> tuple[str, str]:
    v.known_fields(body, {"email", "password"})
    password = body.get("password")
    if not isinstance(password, str) or not 0 < len(password) <= 200:
        raise v.invalid("password", "must be a string")
    return v.email(body), password


class RefreshHandler(_TokenIssuer):
    async def post(self) -> None:
        token = await self.call(_refresh_field(self.body()))
        s = self.deps.settings
        user_id, refresh = await self.call(self.deps.accounts.rotate_refresh(token, s.refresh_token_ttl))
        user = await self.deps.accounts.get(user_id)
        if user is None or user["role"] != "host":
            raise Refused(Kind.UNAUTHORIZED, "refresh_invalid", "the account no longer exists")
        access = self.deps.tokens.issue(user["_id"], role="host", name=user.get("name", ""))
        self.send(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": s.access_token_ttl,
                "refresh_token": refresh,
                "user": public_user(user),
            }
        )


async def _refresh_field(body: dict[str, Any]) -> str:
    v.known_fields(body, {"refresh_token"})
    return str(v.text(body, "refresh_token", max_len=200))


class LogoutHandler(ApiHandler):
    async def post(self) -> None:
        claims = await self.claims()
        body = self.body()
        if body:
            token = await self.call(_refresh_field(body))
            await self.deps.accounts.revoke_refresh(token)
        await self.deps.accounts.revoke_access(claims.jti, claims.exp)
        # Live connections opened with this token end too, on every process.
        await self.deps.webinars.hub.kick("*", claims.user_id, 4003, "logged out", jti=claims.jti)
        self.set_status(204)
        self.finish()


class MeHandler(ApiHandler):
    async def get(self) -> None:
        claims = await self.claims()
        user = await self.deps.accounts.get(claims.user_id)
        if user is None:
            self.send({"id": claims.user_id, "name": claims.name, "role": claims.role, "email": None})
            return
        self.send(public_user(user))
