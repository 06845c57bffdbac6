"""Host accounts: sign-up, login, refresh (rotating), logout, and who am I."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from handlers.api import ApiHandler
from handlers.limits import HOUR, MINUTE, enforce
from realtime.auth.views import public_user
from realtime.engine.session import KICKED
from realtime.notifications.password_reset import PasswordResetMail
from realtime.schema import Body, Email, View, read, trimmed
from storage.errors import Kind, Refused


class Signup(Body):
    email: Email
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)]
    name: Annotated[str, trimmed(100)]


class Login(Body):
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class RefreshBody(Body):
    refresh_token: Annotated[str, trimmed(200)]


class LogoutBody(Body):
    refresh_token: Annotated[str, trimmed(200)] | None = Field(None, description="also revoke its family")


class PasswordResetRequest(Body):
    email: Email


class PasswordResetRequested(View):
    status: Literal["sent_if_registered"] = Field(
        description="a mail with a reset link went to the address if a host account has it"
    )


class PasswordResetConfirm(Body):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="from the mailed link's fragment (#token=...)"
    )
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)]


class User(View):
    id: str
    email: str | None
    name: str
    role: Literal["host", "attendee"]


class Tokens(View):
    access_token: str = Field(description="JWT; send as Authorization: Bearer")
    token_type: Literal["Bearer"]
    expires_in: int = Field(description="seconds the access token is valid")
    refresh_token: str = Field(description="opaque; rotated on every use")
    user: User


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
        new = read(Signup, self.body())
        ip, s = self.request.remote_ip, self.deps.settings
        await enforce(self.deps.limits, f"signup:{ip}", s.signup_rate, HOUR, "sign-ups from this address")
        user = await self.call(self.deps.accounts.create_host(new.email, new.password, new.name))
        self.send(await self.tokens_for(user), 201)


class LoginHandler(_TokenIssuer):
    async def post(self) -> None:
        login = read(Login, self.body())
        email, password = login.email, login.password
        ip, s, limits = self.request.remote_ip, self.deps.settings, self.deps.limits
        await enforce(limits, f"login:{ip}", s.login_address_rate, MINUTE, "logins from this address")
        await enforce(limits, f"login:{email}:{ip}", s.login_rate, MINUTE, "login attempts for this email")
        user = await self.call(self.deps.accounts.authenticate(email, password))
        self.send(await self.tokens_for(user))


class RefreshHandler(_TokenIssuer):
    async def post(self) -> None:
        token = read(RefreshBody, self.body()).refresh_token
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


class LogoutHandler(ApiHandler):
    async def post(self) -> None:
        claims = await self.claims()
        body = self.body()
        token = read(LogoutBody, body).refresh_token
        if token is not None:
            await self.deps.accounts.revoke_refresh(token)
        await self.deps.accounts.revoke_access(claims.jti, claims.exp)
        # Live connections opened with this token end too, on every process.
        await self.deps.webinars.hub.kick("*", claims.user_id, KICKED, "logged out", jti=claims.jti)
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


class _Resets(ApiHandler):
    def _resets(self) -> PasswordResetMail:
        resets = self.deps.password_resets
        if resets is None:
            raise Refused(Kind.UNAVAILABLE, "unavailable", "password resets are not set up")
        return resets


class PasswordResetHandler(_Resets):
    async def post(self) -> None:
        """Anyone: mail a reset link to a host's address; the same answer for any address (the lookup
        and the mail run in a background job). Rate-limited per address and per client."""
        email = read(PasswordResetRequest, self.body()).email
        ip, s, limits = self.request.remote_ip, self.deps.settings, self.deps.limits
        rate = s.password_reset_rate
        await enforce(limits, f"reset:{email}", rate, HOUR, "password resets for this email")
        await enforce(limits, f"reset-client:{ip}", 4 * rate, HOUR, "password resets from this address")
        await self._resets().request(email)
        self.send({"status": "sent_if_registered"}, 202)


class PasswordResetConfirmHandler(_Resets):
    async def post(self) -> None:
        """The mailed token (once) and a new password: every session of the account ends."""
        body = read(PasswordResetConfirm, self.body())
        ip, s = self.request.remote_ip, self.deps.settings
        await enforce(self.deps.limits, f"reset-confirm:{ip}", s.login_address_rate, MINUTE, "reset attempts")
        user = await self.call(self._resets().confirm(body.token, body.password))
        # Its live connections end too, on every process (as at logout).
        await self.deps.webinars.hub.kick("*", user["_id"], KICKED, "password reset")
        self.set_status(204)
        self.finish()
