"""Accounts: hosts (email + argon2 password) and attendees (email only), refresh tokens, revocations.

Refresh tokens are opaque random strings stored only as a sha256 digest. Each use rotates: the old one
is marked used and a new one of the same family (its child) is issued. Presenting a used token again
means it was stolen or replayed, so the whole family is revoked, unless it is a retry whose answer was
lost or tabs refreshing at once: within ``REUSE_GRACE`` seconds of the use, while none of its children
has been used (``rotate_refresh``). Logout revokes the family too.

An administrator can disable a host (login is refused with 403 ``account_disabled``, every refresh
family is revoked and every host token of theirs stops working at once) and reset a host's password
(the refresh families and every host token issued before the reset are revoked). Both are recorded
in ``revoked_tokens`` as one document per user (``_id`` ``user:<id>``, ``before``: tokens issued
earlier are refused; ``disabled``), so a token check stays one query.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from bson import ObjectId
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from storage.batch import Batcher
from storage.errors import Kind, Refused
from storage.mongo import Database, insert_fresh

hasher = PasswordHasher()
# Verifying against a dummy hash when the email is unknown keeps the timing of both failures alike.
_DUMMY_HASH = hasher.hash(secrets.token_hex(16))
# How long after a refresh token's use a retry with it still counts as a lost answer, not a replay.
REUSE_GRACE = 20.0


def new_id() -> str:
    return str(ObjectId())


def now() -> datetime:
    return datetime.now(UTC)


async def create_indexes(db: Database) -> None:
    await db.users.create_index([("email", ASCENDING)], unique=True)
    await db.refresh_tokens.create_index([("family", ASCENDING)])
    await db.refresh_tokens.create_index([("parent", ASCENDING)], sparse=True)
    await db.refresh_tokens.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)
    await db.revoked_tokens.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)


class Accounts:
    def __init__(self, db: Database) -> None:
        self.db = db
        # every authentication asks: concurrent ones share one query (never a cache; storage/batch.py)
        self._revoked: Batcher[str, dict[str, Any] | None] = Batcher(self._find_revoked, missing=None)

    async def _find_revoked(self, ids: list[str]) -> dict[str, dict[str, Any] | None]:
        return {doc["_id"]: doc async for doc in self.db.revoked_tokens.find({"_id": {"$in": ids}})}

    async def create_host(self, email: str, password: str, name: str) -> dict[str, Any]:
        """A new host; an attendee with the same email becomes a host. 409 ``email_taken`` if a host."""
        pw_hash = await asyncio.to_thread(hasher.hash, password)  # argon2 is slow on purpose: off the loop
        existing = await self.db.users.find_one({"email": email})
        if existing is not None:
            if existing["role"] == "host":
                raise Refused(Kind.CONFLICT, "email_taken", "a host account with this email exists")
            await self.db.users.update_one(
                {"_id": existing["_id"], "role": "attendee"},
                {"$set": {"role": "host", "password_hash": pw_hash, "name": name}},
            )
            return {**existing, "role": "host", "name": name}
        user = {
            "_id": new_id(),
            "email": email,
            "name": name,
            "role": "host",
            "password_hash": pw_hash,
            "created_at": now(),
        }
        try:
            await self.db.users.insert_one(user)
        except DuplicateKeyError:
            raise Refused(Kind.CONFLICT, "email_taken", "a host account with this email exists") from None
        return user

    async def authenticate(self, email: str, password: str) -> dict[str, Any]:
        user = await self.db.users.find_one({"email": email, "role": "host"})
        try:
            await asyncio.to_thread(hasher.verify, user["password_hash"] if user else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            user = None
        if user is None:
            raise Refused(Kind.UNAUTHORIZED, "bad_credentials", "wrong email or password")
        if user.get("disabled_at") is not None:
            raise Refused(Kind.FORBIDDEN, "account_disabled", "this account is disabled")
        return user

    # administration (the admin command line) ---------------------------------------------------

    async def hosts(self) -> list[dict[str, Any]]:
        """Every host account, oldest first, without password hashes."""
        cursor = self.db.users.find({"role": "host"}, {"password_hash": 0}).sort("created_at", ASCENDING)
        return await cursor.to_list(None)

    async def host_by_email(self, email: str) -> dict[str, Any]:
        user = await self.db.users.find_one({"email": email, "role": "host"})
        if user is None:
            raise Refused(Kind.NOT_FOUND, "not_found", f"no host account with email {email}")
        return user

    async def set_disabled(self, email: str, disabled: bool) -> dict[str, Any]:
        """Disable (or enable again) a host: see the module docstring for what stops working."""
        user = await self.host_by_email(email)
        marker = {"_id": f"user:{user['_id']}"}
        if disabled:
            t = now()
            await self.db.users.update_one({"_id": user["_id"]}, {"$set": {"disabled_at": t}})
            await self.db.revoked_tokens.update_one(marker, {"$set": {"disabled": True}}, upsert=True)
            await self.db.refresh_tokens.update_many({"user_id": user["_id"]}, {"$set": {"revoked": True}})
        else:
            await self.db.users.update_one({"_id": user["_id"]}, {"$set": {"disabled_at": None}})
            await self.db.revoked_tokens.update_one(marker, {"$set": {"disabled": False}})
        return user

    async def reset_password(self, email: str, password: str) -> dict[str, Any]:
        """A new password; every refresh token and every host token issued until now stop working."""
        user = await self.host_by_email(email)
        pw_hash = await asyncio.to_thread(hasher.hash, password)
        await self.db.users.update_one({"_id": user["_id"]}, {"$set": {"password_hash": pw_hash}})
        # Our tokens' iat has milliseconds; an integrator's whole seconds cannot be a host's.
        before = now().timestamp()
        await self.db.revoked_tokens.update_one(
            {"_id": f"user:{user['_id']}"}, {"$set": {"before": before}}, upsert=True
        )
        await self.db.refresh_tokens.update_many({"user_id": user["_id"]}, {"$set": {"revoked": True}})
        return user

    async def get(self, user_id: str) -> dict[str, Any] | None:
        return await self.db.users.find_one({"_id": user_id})

    async def find_hosts(self, emails: list[str]) -> list[dict[str, Any]]:
        return await self.find_users(emails, role="host")

    async def find_users(self, emails: list[str], role: str | None = None) -> list[dict[str, Any]]:
        """The accounts with these emails (hosts and attendees, who got one by registering)."""
        query: dict[str, Any] = {"email": {"$in": emails}}
        if role is not None:
            query["role"] = role
        return await self.db.users.find(query, {"password_hash": 0}).to_list(None)

    async def attendee(self, email: str, name: str) -> dict[str, Any]:
        """The user with ``email``, created as an attendee on first registration."""
        user = await self.db.users.find_one({"email": email})
        if user is not None:
            return user
        user = {"_id": new_id(), "email": email, "name": name, "role": "attendee", "created_at": now()}
        try:
            await self.db.users.insert_one(user)
        except DuplicateKeyError:  # a concurrent first registration created it
            found = await self.db.users.find_one({"email": email})
            assert found is not None
            return found
        return user

    # refresh tokens ----------------------------------------------------------------------------

    async def issue_refresh(
        self, user_id: str, ttl: int, family: str | None = None, parent: str | None = None
    ) -> str:
        token = secrets.token_urlsafe(32)
        doc: dict[str, Any] = {
            "_id": _digest(token),
            "user_id": user_id,
            "family": family or new_id(),
            "used": False,
            "revoked": False,
            "expires_at": now() + timedelta(seconds=ttl),
        }
        if parent is not None:
            doc["parent"] = parent
        await insert_fresh(self.db.refresh_tokens, doc)
        return token

    async def rotate_refresh(self, token: str, ttl: int) -> tuple[str, str]:
        """(user_id, new refresh token); 401 ``refresh_invalid``/``refresh_reused`` otherwise.

        A used token presented again within ``REUSE_GRACE`` seconds of its use, while none of the
        tokens it was rotated to has been used, is a retry whose answer was lost (a tab reloaded
        during the refresh) or tabs refreshing at once: it gets one more child. The first child used
        revokes its unused siblings, so one line of the family lives on. Any other reuse is a replay
        and ends the family. Nothing here depends on the order two concurrent requests interleave in.
        """
        digest = _digest(token)
        doc = await self.db.refresh_tokens.find_one_and_update(
            {"_id": digest, "used": False, "revoked": False},
            {"$set": {"used": True, "used_at": now()}},
        )
        if doc is not None and doc.get("parent") is not None:
            await self.db.refresh_tokens.update_many(
                {"parent": doc["parent"], "_id": {"$ne": digest}, "used": False, "revoked": False},
                {"$set": {"revoked": True}},
            )
        if doc is None:
            doc = await self.db.refresh_tokens.find_one({"_id": digest})
            if doc is None or doc["revoked"] or not doc["used"]:
                raise Refused(Kind.UNAUTHORIZED, "refresh_invalid", "refresh token is invalid or revoked")
            if not await self._retry(doc):
                await self.revoke_family(doc["family"])
                raise Refused(
                    Kind.UNAUTHORIZED, "refresh_reused", "refresh token was already used; sign in again"
                )
        if doc["expires_at"] <= now():
            raise Refused(Kind.UNAUTHORIZED, "refresh_invalid", "refresh token has expired")
        return doc["user_id"], await self.issue_refresh(doc["user_id"], ttl, doc["family"], digest)

    async def _retry(self, used: dict[str, Any]) -> bool:
        """Whether presenting ``used`` again is a retry: it was used moments ago and none of its
        children has been used since."""
        used_at = used.get("used_at")
        if used_at is None or now() - used_at > timedelta(seconds=REUSE_GRACE):
            return False
        child = await self.db.refresh_tokens.find_one({"parent": used["_id"], "used": True}, {"_id": 1})
        return child is None

    async def revoke_refresh(self, token: str) -> None:
        doc = await self.db.refresh_tokens.find_one({"_id": _digest(token)})
        if doc is not None:
            await self.revoke_family(doc["family"])

    async def revoke_family(self, family: str) -> None:
        await self.db.refresh_tokens.update_many({"family": family}, {"$set": {"revoked": True}})

    async def revoke_access(self, jti: str, exp: float) -> None:
        expires = datetime.fromtimestamp(exp, UTC) + timedelta(minutes=1)
        await self.db.revoked_tokens.update_one({"_id": jti}, {"$set": {"expires_at": expires}}, upsert=True)

    async def access_revoked(self, jti: str, user_id: str = "", issued_at: float = 0.0) -> bool:
        """Whether a host token was revoked: its ``jti`` by logout, or all of ``user_id``'s tokens
        (disabled, or issued at ``issued_at`` before a password reset). One query."""
        ids = [i for i in (jti, f"user:{user_id}" if user_id else "") if i]
        if not ids:
            return False
        for doc in await asyncio.gather(*(self._revoked.get(i) for i in ids)):
            if doc is None:
                continue
            if doc["_id"] == jti or doc.get("disabled") or issued_at < float(doc.get("before", 0.0)):
                return True
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
