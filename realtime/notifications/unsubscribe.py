"""One-click unsubscribe links (RFC 8058): a signed token naming a user and a category.

The token is ``<kid>.<payload>.<signature>``: the payload is ``user_id`` and ``category`` in
base64url, the signature an HMAC-SHA256 with a key derived from the ``JWT_KEYS`` key ``kid`` (so
keys rotate with the others). It does not expire: an old mail's link keeps working, and all it can
do is switch one category's email off for one user.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from config import Settings
from storage.errors import Kind, Refused

UNSUBSCRIBE_PATH = "/unsubscribe"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UnsubscribeLinks:
    def __init__(self, settings: Settings) -> None:
        self.base_url = settings.base_url
        self.keys = {
            kid: hmac.new(key.reveal().encode(), b"unsubscribe", hashlib.sha256).digest()
            for kid, key in settings.jwt_keys.items()
        }
        self.kid = settings.signing_kid

    def token(self, user_id: str, category: str) -> str:
        payload = _b64(f"{user_id}\n{category}".encode())
        return f"{self.kid}.{payload}.{self._sign(self.kid, payload)}"

    def url(self, user_id: str, category: str) -> str:
        return f"{self.base_url}{UNSUBSCRIBE_PATH}/{self.token(user_id, category)}"

    def read(self, token: str) -> tuple[str, str]:
        """(user_id, category) of a valid token; ``Refused(NOT_FOUND, "unsubscribe_invalid")`` else."""
        refused = Refused(Kind.NOT_FOUND, "unsubscribe_invalid", "this unsubscribe link is not valid")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] not in self.keys or len(token) > 1000:
            raise refused
        kid, payload, signature = parts
        if not hmac.compare_digest(self._sign(kid, payload), signature):
            raise refused
        try:
            user_id, category = _unb64(payload).decode().split("\n")
        except (ValueError, UnicodeDecodeError):
            raise refused from None
        return user_id, category

    def _sign(self, kid: str, payload: str) -> str:
        return _b64(hmac.new(self.keys[kid], payload.encode(), hashlib.sha256).digest()[:16])
