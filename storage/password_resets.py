"""Password-reset tokens: single-use, short-lived, kept only as their digest.

A token is 32 random bytes (URL-safe) mailed to the account's address; ``password_resets`` holds its
SHA-256 (``_id``), the account and when it expires. Using it deletes it, so it works once; an
expired one is refused and dropped. A new token leaves earlier unexpired ones valid until they
expire or are used (each is as good as the mail that carried it).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from storage.accounts import now
from storage.mongo import Database, insert_fresh


class PasswordResets:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def issue(self, user_id: str, ttl: float) -> str:
        """A new token for ``user_id``, valid for ``ttl`` seconds (expired tokens are dropped)."""
        t = now()
        await self.db.password_resets.delete_many({"expires_at": {"$lte": t}})
        token = secrets.token_urlsafe(32)
        doc = {"_id": _digest(token), "user_id": user_id, "expires_at": t + timedelta(seconds=ttl)}
        await insert_fresh(self.db.password_resets, doc)
        return token

    async def consume(self, token: str) -> str | None:
        """The account ``token`` resets, once; None for an unknown, used or expired token."""
        doc = await self.db.password_resets.find_one_and_delete({"_id": _digest(token)})
        if doc is None or doc["expires_at"] <= now():
            return None
        return str(doc["user_id"])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
