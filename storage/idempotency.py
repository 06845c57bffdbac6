"""Idempotent sends: a client-chosen key makes a retried send answer with the first send's result
instead of sending again, within a window, across processes.

Contract:
- ``once(scope, key, send)`` runs ``send`` at most once per ``(scope, key)`` within ``window`` seconds
  and answers every call with that key with the first one's result (the same message id and seq).
  The claim is a MongoDB document under a unique index, so two processes agree.
- A call that comes while the first is still running waits for its result, up to ``WAIT`` seconds,
  then is refused ``in_progress`` (409): retry later.
- A ``send`` that fails (raises) releases the key, so a retry sends. A claim whose process died
  before it finished expires after ``LEASE`` seconds.
- ``scope`` names who sends where (the caller decides: a user in a webinar's chat, an API key on a
  channel); the same key in another scope is another send.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from storage.errors import Kind, Refused
from storage.mongo import Database

LEASE = 30.0  # seconds a claim lives while its send runs
WAIT = 10.0  # seconds a repeated call waits for the first one's result

Result = dict[str, Any]


async def create_indexes(db: Database) -> None:
    await db.idempotency.create_index([("s", ASCENDING), ("k", ASCENDING)], unique=True)
    await db.idempotency.create_index("expires_at", expireAfterSeconds=0)


class Idempotency:
    def __init__(self, db: Database, window: float) -> None:
        self._claims = db.idempotency
        self.window = window

    async def once(self, scope: str, key: str | None, send: Callable[[], Awaitable[Result]]) -> Result:
        """``send()``'s result; with a ``key``, the first result for ``(scope, key)`` in the window."""
        if key is None:
            return await send()
        where = {"s": scope, "k": key}
        owner = secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        delay = 0.02
        while True:
            now = datetime.now(UTC)
            try:
                await self._claims.insert_one(
                    {**where, "owner": owner, "done": False, "expires_at": now + timedelta(seconds=LEASE)}
                )
                break
            except DuplicateKeyError:
                pass
            doc = await self._claims.find_one(where)
            if doc is None:
                continue  # released (its send failed) or expired meanwhile: claim it
            if doc["expires_at"] <= now:  # expired; MongoDB's TTL monitor removes it within a minute
                await self._claims.delete_one({"_id": doc["_id"], "owner": doc["owner"]})
                continue
            if doc["done"]:
                result: Result = doc["result"]
                return result
            if loop.time() >= deadline:
                raise Refused(
                    Kind.CONFLICT,
                    "in_progress",
                    "a send with this idempotency_key is still in progress; retry",
                )
            await asyncio.sleep(delay)  # the first send is running (maybe on another process)
            delay = min(delay * 2, 0.2)
        try:
            result = await send()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._claims.delete_one({**where, "owner": owner})
            raise
        expires = datetime.now(UTC) + timedelta(seconds=self.window)
        await self._claims.update_one(
            {**where, "owner": owner}, {"$set": {"done": True, "result": result, "expires_at": expires}}
        )
        return result
