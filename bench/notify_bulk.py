"""Bulk notifications: fan one notification out to every registrant of a webinar and time it.

    .venv/bin/python -m bench.notify_bulk [--recipients 10000] [--redis]

Starts its own MongoDB-wire server (SecantusDB) and, with ``--redis``, a Redis, seeds a webinar
with N approved registrations, then times the real path with the server's default settings: going
live queues a fan-out job, the worker claims it and notifies in chunks of 1,000 (preferences and
links looked up in ``$in`` groups, one inbox ``insert_many``, one ``publish_many``: history seqs
and messages plus one pipelined broker publish, and one push job per chunk). The end is the job's
``done``, polled every 20 ms.

Baseline in the same run (``floor``): the same number of inbox items and history messages, of the
same shape, inserted with ``insert_many`` in chunks of 1,000 into fresh collections with the real
indexes: the storage any fan-out that keeps an inbox item and a recoverable live message per
recipient must do. ``ratio`` = fan-out seconds / floor seconds. CPU seconds of this process (the
app), the database and Redis are given for both phases: on a shared machine they move less than
the wall time. Prints one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from bson import ObjectId

from bench.mail_reminder import cpu_seconds
from config import load_settings
from realtime.notifications.views import public
from server import open_services
from storage import history, notifications
from storage.mongo import Database
from tests.servers import MongoWireServer, RedisServer

CHUNK = 1000


class CpuClock:
    """CPU seconds used by named processes since the last ``lap``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.last = self._read()

    def _read(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def lap(self) -> dict[str, float]:
        now = self._read()
        used = {name: round(now[name] - self.last[name], 2) for name in now}
        self.last = now
        return used


async def floor(db: Database, recipients: int) -> float:
    """Seconds to insert ``recipients`` inbox items and history messages, chunk by chunk."""
    await notifications.create_indexes(db)
    await history.create_indexes(db)
    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    for start in range(0, recipients, CHUNK):
        users = [f"user{n}" for n in range(start, min(recipients, start + CHUNK))]
        item: dict[str, Any] = {"key": "live:bench", "category": "live", "title": "Bench is live"}
        item |= {"body": "Join now.", "url": "/", "webinar_id": "bench", "created_at": now}
        item |= {"read_at": None, "archived_at": None}
        items = [{"_id": ObjectId(), "user_id": u, **item} for u in users]
        await db.notifications.insert_many(items, ordered=False)
        live = [(f"user:{i['user_id']}", public(i)) for i in items]
        await db.history.insert_many(
            [{"c": c, "s": 1, "t": "notification", "d": d, "ts": 0} for c, d in live], ordered=False
        )
    return time.perf_counter() - t0


async def run(recipients: int, mongo_url: str, redis_url: str, pids: dict[str, int]) -> dict[str, object]:
    db_name = "bench" + secrets.token_hex(4)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    (data_dir / "empty.toml").write_text("")
    env = {
        "MONGODB_URL": mongo_url,
        "MONGODB_DATABASE": db_name,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"{db_name}:",
        "DATA_DIR": str(data_dir),
        "LOG_LEVEL": "warning",
    }
    services = await open_services(load_settings(env, toml_path=data_dir / "empty.toml"))
    try:
        db = services.db
        starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        webinar = {"_id": "bench", "title": "Bench", "starts_at": starts, "status": "live"}
        await db.webinars.insert_one(webinar)
        regs = [
            {
                "_id": f"r{n}",
                "webinar_id": "bench",
                "user_id": f"user{n}",
                "email": f"u{n}@x",
                "status": "approved",
            }
            for n in range(recipients)
        ]
        for start in range(0, len(regs), 5000):
            await db.registrations.insert_many(regs[start : start + 5000])
        clock = CpuClock({"app": os.getpid(), **pids})
        t0 = time.perf_counter()
        job_id = await services.notifications.notifier.enqueue_fanout(
            category="live",
            title="Bench is live",
            body="Join now.",
            url="/",
            webinar_id="bench",
            key="live:bench",
        )
        while True:
            job = await services.notifications.jobs.get(job_id)
            if job and job["status"] in ("done", "failed"):
                break
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - t0
        cpu = clock.lap()
        stored = await db.notifications.count_documents({"category": "live"})
        messages = await db.history.count_documents({"t": "notification"})
        clock.lap()
        floor_seconds = await floor(services.client[db.name + "floor"], recipients)
        floor_cpu = clock.lap()
        return {
            "recipients": recipients,
            "status": job["status"],
            "inbox_items": stored,
            "live_messages": messages,
            "seconds": round(elapsed, 2),
            "per_second": round(recipients / elapsed),
            "cpu_seconds": cpu,
            "cpu_ms_per_recipient": {k: round(1000 * v / recipients, 3) for k, v in cpu.items()},
            "floor_seconds": round(floor_seconds, 2),
            "floor_cpu_seconds": floor_cpu,
            "ratio": round(elapsed / floor_seconds, 2),
            "broker": "redis" if redis_url else "memory",
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--redis", action="store_true", help="publish through a real Redis broker")
    args = parser.parse_args()
    mongo = MongoWireServer()
    redis = RedisServer() if args.redis else None
    mongo.start()
    try:
        pids = {"db": mongo.proc.pid if mongo.proc else 0}
        if redis is not None:
            redis.start()
            pids["redis"] = redis.proc.pid if redis.proc else 0
        result = asyncio.run(run(args.recipients, mongo.url, redis.url if redis else "", pids))
    finally:
        mongo.close()
        if redis is not None:
            redis.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
