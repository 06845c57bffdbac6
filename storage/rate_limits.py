"""Rate limits shared by every process: at most ``limit`` attempts under one key in any ``window`` seconds.

:class:`RateLimits` keeps them in MongoDB (the ``rate_limits`` collection), so every process of a
deployment counts together and a restart forgets nothing; each check is one atomic update of one small
document. The publish API, where that round trip would cost more than the publish itself, counts in
Redis when the broker is Redis and in the process otherwise (``rate_limits_live.py``): with no Redis
there is one process, so both count every process. Refused attempts count too: a client that keeps
hammering keeps being refused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pymongo import ASCENDING, ReturnDocument

from storage.mongo import Database


async def create_indexes(db: Database) -> None:
    await db.rate_limits.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)


class Limiter(Protocol):
    async def hit(self, key: str, limit: int, window: float) -> int:
        """Count one attempt under ``key``: 0 when at most ``limit`` attempts (this one included) fall in
        the last ``window`` seconds, else the whole seconds to wait. ``limit`` 0: no limit."""
        ...


def retry_after(attempts: Sequence[float], limit: int, window: float, now: float) -> int:
    """The sliding-window verdict on ``attempts`` (times in seconds, oldest first, the newest ``limit
    + 1`` including this one at ``now``): 0 when allowed, else the whole seconds to wait. The next
    attempt drops the oldest, so it is allowed once the second oldest has left the window."""
    if len(attempts) <= limit or attempts[0] <= now - window:
        return 0
    return max(1, math.ceil(attempts[1] + window - now))


class RateLimits:
    """The :class:`Limiter` in MongoDB, for the auth, registration and ticket limits."""

    def __init__(self, db: Database) -> None:
        self._coll = db.rate_limits

    async def hit(self, key: str, limit: int, window: float) -> int:
        """Count one attempt under ``key``: 0 when at most ``limit`` attempts (this one included) fall in
        the last ``window`` seconds, else the whole seconds to wait before the next one is allowed. A
        ``limit`` of 0 means no limit (nothing is stored).

        A sliding window: the newest ``limit + 1`` attempt times are kept in time order (``$sort``, so
        processes' writes that arrive out of order still keep the newest), and idle keys expire."""
        if limit <= 0:
            return 0
        t = datetime.now(UTC)
        doc = await self._coll.find_one_and_update(
            {"_id": key},
            {
                "$push": {"at": {"$each": [t], "$sort": 1, "$slice": -(limit + 1)}},
                "$set": {"expires_at": t + timedelta(seconds=window)},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        attempts = [a.timestamp() for a in doc["at"]] if doc is not None else [t.timestamp()]
        return retry_after(attempts, limit, window, t.timestamp())
