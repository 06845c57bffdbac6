"""Bearer authentication for the notification API: a user's JWT, or an integrator API key."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

import tornado.web

from config.settings import Secret
from handlers.base import ApiError
from realtime.tokens import Claims, TokenError, TokenService


def bearer(handler: tornado.web.RequestHandler) -> str:
    scheme, _, value = handler.request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "token_invalid", "send Authorization: Bearer <token>")
    return value.strip()


def bearer_claims(handler: tornado.web.RequestHandler, tokens: TokenService) -> Claims:
    """The verified caller of ``handler``, or ApiError 401 ``token_invalid``/``token_expired``."""
    try:
        return tokens.verify(bearer(handler))
    except TokenError as exc:
        raise ApiError(401, exc.code, exc.message) from None


def api_key_name(handler: tornado.web.RequestHandler, api_keys: Mapping[str, Secret]) -> str | None:
    """The name of the integrator API key in the bearer header, or None when it is not one."""
    scheme, _, value = handler.request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value:
        return None
    given = value.strip().encode()
    found = None
    for name, key in api_keys.items():
        # Compare with every key, so the time taken does not reveal which one matched.
        if hmac.compare_digest(given, key.reveal().encode()):
            found = name
    return found
