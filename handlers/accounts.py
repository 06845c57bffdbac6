"""Host accounts: sign-up, login, refresh (rotating), logout, and who am I.

A browser keeps its session in a cookie instead of the answer (``"cookie": true`` at login or
sign-up): the refresh token goes into an HttpOnly, SameSite=Strict cookie scoped to
``/api/auth/refresh`` (Secure when the request came over TLS), so page scripts never see it and
only the refresh endpoint receives it. That endpoint then wants the ``X-CSRF-Token`` header equal to
the readable ``host_csrf`` cookie (double submit: another site can neither read the cookie nor send
the header without a CORS preflight this server refuses) and, when the browser sends ``Origin``,
this server's own host. ``DELETE /api/auth/refresh`` revokes the cookie's token family and clears
both cookies.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, StringConstraints

from handlers.api import ApiHandler
from handlers.limits import HOUR, MINUTE, enforce
from realtime.auth.views import public_user
from realtime.engine.session import KICKED
from realtime.notifications.password_reset import PasswordResetMail
from realtime.schema import Body, Email, View, read, trimmed
from storage.errors import Kind, Refused

COOKIE_FIELD = Field(
    False, description="keep the refresh token in an HttpOnly cookie for /api/auth/refresh, not in the answer"
)


class Signup(Body):
    email: Email
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)]
    name: Annotated[str, trimmed(100)]
    cookie: bool = COOKIE_FIELD


class Login(Body):
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    cookie: bool = COOKIE_FIELD


class RefreshBody(Body):
    refresh_token: Annotated[str, trimmed(200)] | None = Field(
        None, description="absent: the refresh cookie (with the X-CSRF-Token header)"
    )


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
    refresh_token: str | None = Field(
        None, description="opaque; rotated on every use; absent when it went into the refresh cookie"
    )
    user: User


REFRESH_COOKIE = "host_refresh"
CSRF_COOKIE = "host_csrf"
CSRF_HEADER = "X-CSRF-Token"
REFRESH_PATH = "/api/auth/refresh"


class _TokenIssuer(ApiHandler):
    async def tokens_for(self, user: dict[str, Any], *, cookie: bool) -> dict[str, Any]:
        refresh = await self.deps.accounts.issue_refresh(user["_id"], self.deps.settings.refresh_token_ttl)
        return self.answer(user, refresh, cookie=cookie)

    def answer(self, user: dict[str, Any], refresh: str, *, cookie: bool) -> dict[str, Any]:
        """The tokens; with ``cookie`` the refresh token goes into the refresh cookie instead."""
        s = self.deps.settings
        out = {
            "access_token": self.deps.tokens.issue(user["_id"], role="host", name=user.get("name", "")),
            "token_type": "Bearer",
            "expires_in": s.access_token_ttl,
            "refresh_token": refresh,
            "user": public_user(user),
        }
        if cookie:
            del out["refresh_token"]
            secure = self.request.protocol == "https"
            flags: dict[str, Any] = {"secure": secure, "samesite": "Strict", "max_age": s.refresh_token_ttl}
            self.set_cookie(REFRESH_COOKIE, refresh, path=REFRESH_PATH, httponly=True, **flags)
            csrf = self.get_cookie(CSRF_COOKIE) or secrets.token_urlsafe(24)
            self.set_cookie(CSRF_COOKIE, csrf, path="/", **flags)
        return out

    def check_csrf(self) -> None:
        """403 ``csrf_failed`` unless the request carries the CSRF header equal to the CSRF cookie
        and, if the browser said where it came from, comes from this server's own origin."""
        origin = self.request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != self.request.host:
            raise Refused(Kind.FORBIDDEN, "csrf_failed", "this request came from another site")
        cookie = self.get_cookie(CSRF_COOKIE) or ""
        header = self.request.headers.get(CSRF_HEADER, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
            message = f"send the {CSRF_HEADER} header with the {CSRF_COOKIE} cookie's value"
            raise Refused(Kind.FORBIDDEN, "csrf_failed", message)


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
        self.send(await self.tokens_for(user, cookie=new.cookie), 201)


class LoginHandler(_TokenIssuer):
    async def post(self) -> None:
        login = read(Login, self.body())
        email, password = login.email, login.password
        ip, s, limits = self.request.remote_ip, self.deps.settings, self.deps.limits
        await enforce(limits, f"login:{ip}", s.login_address_rate, MINUTE, "logins from this address")
        await enforce(limits, f"login:{email}:{ip}", s.login_rate, MINUTE, "login attempts for this email")
        user = await self.call(self.deps.accounts.authenticate(email, password))
        self.send(await self.tokens_for(user, cookie=login.cookie))


class RefreshHandler(_TokenIssuer):
    async def post(self) -> None:
        """Rotate the body's refresh token, or (none in the body) the refresh cookie's."""
        token = read(RefreshBody, self.body()).refresh_token
        cookie = token is None
        if cookie:
            self.check_csrf()
            token = self.get_cookie(REFRESH_COOKIE)
            if not token:
                raise Refused(Kind.UNAUTHORIZED, "refresh_invalid", "no session: sign in")
        assert token is not None
        ttl = self.deps.settings.refresh_token_ttl
        user_id, refresh = await self.call(self.deps.accounts.rotate_refresh(token, ttl))
        user = await self.deps.accounts.get(user_id)
        if user is None or user["role"] != "host":
            raise Refused(Kind.UNAUTHORIZED, "refresh_invalid", "the account no longer exists")
        self.send(self.answer(user, refresh, cookie=cookie))

    async def delete(self) -> None:
        """Sign a browser out: revoke the refresh cookie's token family and clear the cookies."""
        self.check_csrf()
        token = self.get_cookie(REFRESH_COOKIE)
        if token:
            await self.deps.accounts.revoke_refresh(token)
        self.clear_cookie(REFRESH_COOKIE, path=REFRESH_PATH)
        self.clear_cookie(CSRF_COOKIE, path="/")
        self.set_status(204)
        self.finish()


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
