"""The server processes using this database, each with a heartbeat (realtime/process/registry.py).

One document per process: ``_id`` (host:pid:random), ``host``, ``pid``, ``worker`` (its index under a
supervisor, or None), ``broker`` (which broker it delivers live messages through, without secrets),
``seen`` (its last heartbeat) and ``expires`` (when it counts as gone without another heartbeat;
MongoDB's TTL monitor then deletes it). Times are the writing host's clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from storage.mongo import Database


async def create_indexes(db: Database) -> None:
    await db.processes.create_index("expires", expireAfterSeconds=0)


class Processes:
    def __init__(self, db: Database) -> None:
        self._coll = db.processes

    async def beat(self, process_id: str, fields: dict[str, Any], lifetime: float) -> None:
        """Record that ``process_id`` is alive now and counts as alive for ``lifetime`` seconds."""
        now = dt.datetime.now(dt.UTC)
        expires = now + dt.timedelta(seconds=lifetime)
        await self._coll.update_one(
            {"_id": process_id}, {"$set": {**fields, "seen": now, "expires": expires}}, upsert=True
        )

    async def live(self) -> list[dict[str, Any]]:
        """Every process whose heartbeat has not expired."""
        now = dt.datetime.now(dt.UTC)
        return [doc async for doc in self._coll.find({"expires": {"$gt": now}})]

    async def remove(self, process_id: str) -> None:
        await self._coll.delete_one({"_id": process_id})
