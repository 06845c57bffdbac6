"""Rate limits shared by every process: at most ``limit`` attempts under one key in any ``window`` seconds.

Kept in MongoDB (the ``rate_limits`` collection), so every process of a deployment counts together and a
restart forgets nothing; each check is one atomic update of one small document. Refused attempts count
too: a client that keeps hammering keeps being refused, however many processes it spreads over.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, ReturnDocument

from storage.mongo import Database


async def create_indexes(db: Database) -> None:
    await db.rate_limits.create_index([("expires_at", ASCENDING)], expireAfterSeconds=0)


class RateLimits:
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
        attempts = list(doc["at"]) if doc is not None else [t]
        if len(attempts) <= limit or attempts[0] <= t - timedelta(seconds=window):
            return 0
        # The next attempt drops the oldest; it is allowed once the second oldest has left the window.
        free_at = attempts[1] + timedelta(seconds=window)
        return max(1, math.ceil((free_at - t).total_seconds()))
