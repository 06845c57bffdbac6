"""Bearer authentication for REST handlers: a JWT (ours or an integrator's) or an API key."""

from __future__ import annotations

import hmac

import tornado.web

from config import Settings
from realtime.auth.tokens import Claims, TokenService
from storage.errors import Kind, Refused


def bearer(handler: tornado.web.RequestHandler) -> str:
    header = handler.request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Refused(Kind.UNAUTHORIZED, "unauthorized", "send Authorization: Bearer <token>")
    return value.strip()


async def bearer_claims(handler: tornado.web.RequestHandler, tokens: TokenService) -> Claims:
    """The verified caller, or a 401 with ``unauthorized``/``token_invalid``/``token_expired``/
    ``token_revoked``."""
    return await tokens.authenticate(bearer(handler))


def api_key_name(handler: tornado.web.RequestHandler, settings: Settings) -> str | None:
    """The name of the integrator API key presented as the bearer value, if it is one."""
    header = handler.request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return None
    presented = value.strip().encode()
    found = None
    for name, key in settings.api_keys.items():
        if hmac.compare_digest(presented, key.reveal().encode()):
            found = name
    return found
