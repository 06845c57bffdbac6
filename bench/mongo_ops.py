"""What single bulk operations cost the embedded MongoDB-wire server (SecantusDB), per 1,000 documents.

    .venv/bin/python -m bench.mongo_ops

Starts its own SecantusDB (``--sync-on-commit``) and measures the operations the fan-out's storage
is made of: ``$in`` lookups by ``_id`` at once and in groups, counter increments as one
``update_many``, in groups and as a ``bulk_write`` of ``UpdateOne``, and the inserts of counters,
inbox items (the real indexes) and history messages. Prints one line per operation: wall and
database CPU milliseconds (``/proc/<pid>/stat``), the CPU being the figure that moves less on a
shared machine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient, UpdateOne

from bench.mail_reminder import cpu_seconds
from storage import history, notifications
from tests.servers import MongoWireServer

N = 1000


async def measure(label: str, pid: int, run: Callable[[], Awaitable[Any]]) -> None:
    cpu, t0 = cpu_seconds(pid), time.perf_counter()
    await run()
    wall, used = time.perf_counter() - t0, cpu_seconds(pid) - cpu
    print(f"{label:<58} wall {wall * 1000:7.0f} ms   db cpu {used * 1000:7.0f} ms", flush=True)


async def main(url: str, pid: int) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    db = client.mongo_ops
    ids = [f"user:u{n}" for n in range(N)]
    counters = db.channel_seq
    fresh = [{"_id": i, "seq": 0} for i in ids]
    await measure("insert_many 1,000 counters", pid, lambda: counters.insert_many(fresh))
    for size in (1000, 200, 100, 50, 25):
        parts = [ids[s : s + size] for s in range(0, N, size)]

        async def one_by_one(parts: list[list[str]] = parts) -> None:
            for part in parts:
                await counters.find({"_id": {"$in": part}}).to_list(None)

        async def four_at_once(parts: list[list[str]] = parts) -> None:
            slots = asyncio.Semaphore(4)

            async def one(part: list[str]) -> None:
                async with slots:
                    await counters.find({"_id": {"$in": part}}).to_list(None)

            await asyncio.gather(*(one(p) for p in parts))

        await measure(f"find $in by _id, groups of {size}, one after another", pid, one_by_one)
        await measure(f"find $in by _id, groups of {size}, 4 at once", pid, four_at_once)
    for size in (1000, 100, 50):
        parts = [ids[s : s + size] for s in range(0, N, size)]

        async def increments(parts: list[list[str]] = parts) -> None:
            for part in parts:
                await counters.update_many({"_id": {"$in": part}}, {"$inc": {"seq": 1}})

        await measure(f"update_many $inc, groups of {size}", pid, increments)
    updates = [UpdateOne({"_id": i}, {"$inc": {"seq": 1}}) for i in ids]
    await measure("bulk_write of 1,000 UpdateOne $inc", pid, lambda: counters.bulk_write(updates))
    await notifications.create_indexes(db)
    await history.create_indexes(db)
    now = dt.datetime.now(dt.UTC)
    item = {"key": "k", "category": "live", "title": "Bench is live", "body": "Join now.", "url": "/"}
    item |= {"webinar_id": "bench", "created_at": now, "read_at": None, "archived_at": None}
    items = [{"user_id": f"u{n}", **item} for n in range(N)]
    inbox, messages = db.notifications, db.history
    await measure("insert_many 1,000 inbox items (real indexes)", pid, lambda: inbox.insert_many(items))
    live = [{"c": c, "s": 1, "t": "notification", "d": {"title": "Bench is live"}, "ts": 0} for c in ids]
    await measure("insert_many 1,000 history messages (real index)", pid, lambda: messages.insert_many(live))
    await client.close()


if __name__ == "__main__":
    server = MongoWireServer()
    server.start()
    try:
        asyncio.run(main(server.url, server.proc.pid if server.proc else 0))
    finally:
        server.close()
