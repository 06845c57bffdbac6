"""JWTs: signing this server's tokens and verifying every token that reaches it.

Best practice, enforced here rather than at call sites: one allow-listed algorithm per key set (a
token's ``alg`` header never chooses the algorithm), required ``exp``/``iat``/``iss``/``aud``/``sub``,
and a ``kid`` header naming the key, so keys rotate by adding a new first key and later removing the
old one. Integrator-minted tokens are verified with the integrator keys and issuer only, and may carry
only attendee scope.

Every token is revocable (logout): a token's id is its ``jti`` (an integrator's is prefixed ``ext:``
like its subject), or for a token without one the digest of the token itself.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt

from config import Settings
from storage.errors import unauthorized

LEEWAY_SECONDS = 30


@dataclass(frozen=True)
class Claims:
    """A verified caller. ``role`` is ``host`` (an account) or ``attendee``; ``webinar`` scopes an
    attendee join token to one webinar (None means any webinar the user is registered for)."""

    sub: str
    role: str
    name: str
    exp: float
    webinar: str | None = None
    scope: str = "access"
    jti: str = ""  # the token's id, never empty for a verified token (see token_id)
    iat: float = 0.0

    @property
    def user_id(self) -> str:
        return self.sub

    @property
    def is_host(self) -> bool:
        return self.role == "host"


class TokenService:
    def __init__(
        self,
        settings: Settings,
        *,
        is_revoked: Callable[[str, str, float], Awaitable[bool]] | None = None,
        link_ended: Callable[[str, str, float], Awaitable[bool]] | None = None,
    ) -> None:
        if not settings.jwt_keys:
            raise ValueError("no signing key: JWT_KEYS is empty (config.signing_key.with_signing_key)")
        self.settings = settings
        self.algorithm = settings.jwt_algorithm
        self.keys = {kid: key.reveal() for kid, key in settings.jwt_keys.items()}
        self.integrator_keys = {kid: key.reveal() for kid, key in settings.integrator_keys.items()}
        # Whether a token was revoked: its id by logout (every role), or a host's tokens issued before a
        # password reset or while the account is disabled (the accounts store); None: never.
        self.is_revoked = is_revoked
        # Whether an attendee's join token for a webinar (webinar id, user id, issued at) was ended by
        # cancelling the registration (the registrations store); None: never.
        self.link_ended = link_ended

    def issue(
        self,
        sub: str,
        *,
        role: str,
        name: str = "",
        ttl: int | None = None,
        webinar: str | None = None,
        scope: str = "access",
        extra: dict[str, Any] | None = None,
    ) -> str:
        issued = int(time.time() * 1000) / 1000  # never later than the issue itself
        now = int(issued)
        claims: dict[str, Any] = {
            "sub": sub,
            "role": role,
            "name": name,
            "scope": scope,
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            # milliseconds (a NumericDate may have a fraction): a token issued just after a password
            # reset or a cancel, in the same second, is told apart from one issued before it
            "iat": issued,
            "exp": now + (ttl if ttl is not None else self.settings.access_token_ttl),
            "jti": secrets.token_urlsafe(12),
        }
        if webinar is not None:
            claims["wid"] = webinar
        if extra:
            claims.update(extra)
        kid = self.settings.signing_kid
        return jwt.encode(claims, self.keys[kid], algorithm=self.algorithm, headers={"kid": kid})

    async def authenticate(self, token: str) -> Claims:
        """:meth:`verify`, and the revocation check; the one place every REST handler, the
        WebSocket and the SSE ticket endpoint authenticate a caller."""
        return await self.unrevoked(self.verify(token))

    async def unrevoked(self, claims: Claims) -> Claims:
        """``claims`` if their token was not revoked, else 401 ``token_revoked``: logged out (every
        role), a host's token from before a password reset or of a disabled account, or an
        attendee's join link whose registration was cancelled (on every process); also for
        claims verified earlier, such as those an SSE ticket was issued for."""
        revoked = self.is_revoked
        host = claims.sub if claims.is_host else ""
        if revoked is not None and await revoked(claims.jti, host, claims.iat):
            raise unauthorized(
                "token_revoked", "this token was revoked (logout, password reset or disabled account)"
            )
        ended = self.link_ended
        if ended is not None and claims.webinar is not None and not claims.is_host:
            if await ended(claims.webinar, claims.sub, claims.iat):
                raise unauthorized("token_revoked", "this join link ended: the registration was cancelled")
        return claims

    def verify(self, token: str, *, scope: str = "access") -> Claims:
        """Verify ``token`` (ours or an integrator's) and return its claims, or raise ``Refused``"""
        if not isinstance(token, str) or not token or len(token) > 8192:
            raise unauthorized("token_invalid", "missing or oversized token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise unauthorized("token_invalid", "malformed token") from None
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise unauthorized("token_invalid", "token has no key id (kid)")
        integrator = kid not in self.keys and kid in self.integrator_keys
        key = self.integrator_keys.get(kid) if integrator else self.keys.get(kid)
        if key is None:
            raise unauthorized("token_invalid", "unknown key id")
        issuer = self.settings.integrator_issuer if integrator else self.settings.jwt_issuer
        try:
            data = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                audience=self.settings.jwt_audience,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("token_expired", "token has expired") from None
        except jwt.PyJWTError as exc:
            raise unauthorized("token_invalid", f"token refused: {exc}") from None
        role = data.get("role", "attendee")
        if integrator and role != "attendee":
            raise unauthorized("token_invalid", "integrator tokens may only carry the attendee role")
        if role not in ("host", "attendee"):
            raise unauthorized("token_invalid", "unknown role")
        token_scope = data.get("scope", "access")
        if token_scope != scope:
            raise unauthorized("token_invalid", f"a {token_scope} token cannot be used here")
        sub = data["sub"]
        if not isinstance(sub, str) or not 0 < len(sub) <= 128:
            raise unauthorized("token_invalid", "bad subject")
        token_id = _token_id(token, data.get("jti"))
        if integrator:
            sub = f"ext:{sub}"  # integrator user ids never collide with ours
            token_id = f"ext:{token_id}"
        wid = data.get("wid")
        return Claims(
            sub=sub,
            role=role,
            name=str(data.get("name", ""))[:100],
            exp=float(data["exp"]),
            webinar=wid if isinstance(wid, str) else None,
            scope=token_scope,
            jti=token_id,
            iat=float(data["iat"]),
        )


def _token_id(token: str, jti: Any) -> str:
    """The id logout revokes: the token's ``jti``, or the digest of a token that has none."""
    if isinstance(jti, str) and 0 < len(jti) <= 128:
        return jti
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def mint_integrator_token(
    settings: Settings, sub: str, *, name: str = "", webinar: str | None = None, ttl: int, kid: str = ""
) -> str:
    """An attendee token signed as an integrator's backend would sign it (``INTEGRATOR_KEYS``,
    ``INTEGRATOR_ISSUER``): for the admin command line and for trying the integration out.
    ``kid`` defaults to the first integrator key; raises ``KeyError`` naming an unknown one."""
    keys = settings.integrator_keys
    kid = kid or next(iter(keys))
    secret = keys[kid].reveal()
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "role": "attendee",
        "name": name,
        "scope": "access",
        "iss": settings.integrator_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + ttl,
        "jti": secrets.token_urlsafe(12),
    }
    if webinar is not None:
        claims["wid"] = webinar
    return jwt.encode(claims, secret, algorithm=settings.jwt_algorithm, headers={"kid": kid})
