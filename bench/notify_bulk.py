"""Bulk notifications: fan one notification out to every registrant of a webinar and time it.

    .venv/bin/python -m bench.notify_bulk [--recipients 10000] [--redis]

Starts its own MongoDB-wire server (SecantusDB) and, with ``--redis``, a Redis, seeds a webinar
with N approved registrations, then times the real path: going live queues a fan-out job, the
worker claims it and notifies in chunks of 1,000 (one preferences query, one ``insert_many``, one
unread aggregation, one ``publish_many`` and one push job per chunk). Prints one line of JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import secrets
import tempfile
import time
from pathlib import Path

from config import load_settings
from server import open_services
from tests.servers import MongoWireServer, RedisServer


async def run(recipients: int, mongo_url: str, redis_url: str) -> dict[str, object]:
    db_name = "bench" + secrets.token_hex(4)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    (data_dir / "empty.toml").write_text("")
    env = {
        "MONGODB_URL": mongo_url,
        "MONGODB_DATABASE": db_name,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"{db_name}:",
        "DATA_DIR": str(data_dir),
        "WORKER_POLL_INTERVAL": "0.05",
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
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - t0
        stored = await db.notifications.count_documents({"category": "live"})
        history = await db.history.count_documents({"t": "notification"})
        return {
            "recipients": recipients,
            "status": job["status"],
            "inbox_items": stored,
            "live_messages": history,
            "seconds": round(elapsed, 2),
            "per_second": round(recipients / elapsed),
            "broker": "redis" if redis_url else "memory",
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
        if redis is not None:
            redis.start()
        result = asyncio.run(run(args.recipients, mongo.url, redis.url if redis else ""))
    finally:
        mongo.close()
        if redis is not None:
            redis.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
