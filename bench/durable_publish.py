"""Durable publish benchmark: many publishers posting ~200-byte durable messages into one room
through the HTTP publish API, with a raw PyMongo baseline against the same SecantusDB in the same run.

    .venv/bin/python -m bench.durable_publish [--publishers 50] [--duration 10] [--rate 200]

Phases, each ``--duration`` s (after one warm-up publish that creates the channel's counter):
- **baseline**: ``--publishers`` asyncio tasks each looping ``insert_one`` of a message-sized
  document with PyMongo's ``AsyncMongoClient`` into the same SecantusDB (no server.py): what the
  database takes at that concurrency, the floor a durable publish builds on.
- **max**: ``--publishers`` keep-alive HTTP connections, each posting the next message as soon as
  the previous one is answered (202): durable messages/s and publish latency (request to answer).
- **rate**: ``--rate`` messages/s offered, spread over the same connections; latency is measured
  from the moment a message was due, so a server that falls behind shows it.
Afterwards the room's history is checked: every accepted message stored once, seqs 1..n, no gap.

Layout as bench/fanout.py: SecantusDB and server.py on core 0, this process on core 1. Prints a
table and writes bench/results/durable-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import select
import time
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from bench.loadgen import Pub
from bench.servers import Cluster, cpu_seconds

CHANNEL = "room:bench"
RESULTS = Path(__file__).resolve().parent / "results"
SERVER_CORE, CLIENT_CORE = 0, 1
TEXT = "x" * 150


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.durable_publish", description=__doc__)
    p.add_argument("--publishers", type=int, default=50)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    p.add_argument("--rate", type=float, default=200.0, help="messages/s of the fixed-rate phase")
    p.add_argument("--output", help="JSON results file (default bench/results/durable-<time>.json)")
    return p.parse_args(argv)


def percentiles(lat_s: list[float]) -> dict[str, float]:
    lat = sorted(lat_s)
    if not lat:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    at = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1)  # noqa: E731
    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": round(lat[-1] * 1000, 1)}


async def baseline(url: str, publishers: int, duration: float) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    coll = client["bench_baseline"]["messages"]
    await coll.insert_one({"warm": True})
    lat: list[float] = []
    end = time.monotonic() + duration

    async def loop(p: int) -> None:
        n = 0
        while time.monotonic() < end:
            t = time.monotonic()
            await coll.insert_one({"c": CHANNEL, "p": p, "n": n, "t": "announcement", "d": {"text": TEXT}})
            lat.append(time.monotonic() - t)
            n += 1

    t0 = time.monotonic()
    await asyncio.gather(*(loop(p) for p in range(publishers)))
    took = time.monotonic() - t0
    await client.close()
    return {"phase": "baseline: PyMongo insert_one", "messages": len(lat),
            "per_s": round(len(lat) / took), **percentiles(lat)}  # fmt: skip


class Publishers:
    """Keep-alive HTTP connections to the publish API, at most one request in flight on each."""

    def __init__(self, port: int, count: int, api_key: str) -> None:
        self.head = (
            f"POST /api/channels/{CHANNEL}/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
        ).encode()
        self.ep = select.epoll()
        self.pubs = {pub.fd: pub for pub in (Pub(port) for _ in range(count))}
        self.sent_at: dict[int, float] = {}
        for fd in self.pubs:
            self.ep.register(fd, select.EPOLLIN)
        self.accepted = 0
        self.errors: list[str] = []
        self.n = 0

    def send(self, pub: Pub, due: float) -> None:
        body = b'{"type":"announcement","durable":true,"data":{"n":%d,"text":"%s"}}' % (self.n, TEXT.encode())
        self.n += 1
        pub.sock.send(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        pub.busy = True
        self.sent_at[pub.fd] = due

    def poll(self, timeout: float, lat: list[float]) -> list[Pub]:
        """Read answers; the connections that became free."""
        free = []
        for fd, _ in self.ep.poll(timeout):
            pub = self.pubs[fd]
            data = pub.sock.recv(65536)
            if not data:
                raise RuntimeError("the server closed a publish connection")
            pub.buf += data
            head, sep, rest = pub.buf.partition(b"\r\n\r\n")
            if not sep:
                continue
            lines = head.split(b"\r\n")
            length = next((int(x[15:]) for x in lines if x[:15].lower() == b"content-length:"), 0)
            if len(rest) < length:
                continue
            status = head.split(b"\r\n", 1)[0]
            if b" 202 " in status:
                self.accepted += 1
                lat.append(time.monotonic() - self.sent_at[fd])
            elif len(self.errors) < 10:
                self.errors.append((status + b" " + rest[:length]).decode(errors="replace"))
            pub.buf = rest[length:]
            pub.busy = False
            free.append(pub)
        return free

    def run(self, duration: float, rate: float | None) -> tuple[list[float], float]:
        """Publish for ``duration`` s (as fast as answered, or ``rate``/s); latencies, seconds."""
        lat: list[float] = []
        t0 = time.monotonic()
        end, due = t0 + duration, t0
        idle = list(self.pubs.values())
        while time.monotonic() < end:
            now = time.monotonic()
            if rate is None:
                for pub in idle:
                    self.send(pub, now)
                idle = []
            else:
                while idle and due <= now:
                    self.send(idle.pop(), due)
                    due += 1 / rate
            idle += self.poll(0.002 if rate else 0.05, lat)
        took = time.monotonic() - t0
        while any(p.busy for p in self.pubs.values()):
            self.poll(0.05, lat)
        return lat, took

    def close(self) -> None:
        for pub in self.pubs.values():
            pub.sock.close()
        self.ep.close()


async def check_history(url: str, accepted: int) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    db = client["bench"]
    seqs = [d["s"] async for d in db.history.find({"c": CHANNEL}, {"s": 1, "_id": 0}).sort("s", 1)]
    counter = await db.channel_seq.find_one({"_id": CHANNEL})
    await client.close()
    return {"stored": len(seqs), "accepted": accepted, "contiguous": seqs == list(range(1, len(seqs) + 1)),
            "counter": counter["seq"] if counter else 0}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cores = sorted(os.sched_getaffinity(0))
    server_core = SERVER_CORE if len(cores) >= 2 else None
    if server_core is not None:
        os.sched_setaffinity(0, {CLIENT_CORE})
    cluster = Cluster(core=server_core)
    started = datetime.datetime.now(datetime.UTC)
    phases: list[dict[str, Any]] = []
    try:
        mongo = cluster.start_mongo()
        app = cluster.start_app("app", mongo, None, 1 << 20)
        url = f"mongodb://127.0.0.1:{mongo.port}/?directConnection=true"
        time.sleep(0.5)
        phases.append(asyncio.run(baseline(url, args.publishers, args.duration)))
        pubs = Publishers(app.port, args.publishers, cluster.api_key)
        try:
            pubs.run(0.05, 1.0)  # one publish creates the channel's counter
            for label, rate in (("max", None), (f"{args.rate:g}/s", args.rate)):
                cpu0 = cpu_seconds(app.pid) + cpu_seconds(mongo.pid)
                accepted0 = pubs.accepted
                lat, took = pubs.run(args.duration, rate)
                cpu = cpu_seconds(app.pid) + cpu_seconds(mongo.pid) - cpu0
                done = pubs.accepted - accepted0
                phases.append({"phase": f"HTTP publish, {label}", "messages": done,
                               "per_s": round(done / took),
                               "server_and_db_cpu_ms_per_msg": round(cpu * 1000 / max(done, 1), 2),
                               **percentiles(lat)})  # fmt: skip
            errors = pubs.errors
            accepted = pubs.accepted
        finally:
            pubs.close()
        history = asyncio.run(check_history(url, accepted))
    finally:
        cluster.close(keep_logs=RESULTS / "logs-durable")
    base = phases[0]["per_s"]
    for ph in phases:
        ph["ratio_to_baseline"] = round(ph["per_s"] / base, 2) if base else None
    result = {"date": started.isoformat(timespec="seconds"), "load_average": os.getloadavg(),
              "publishers": args.publishers, "duration": args.duration, "phases": phases,
              "history": history, "errors": errors}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    out = Path(args.output or RESULTS / f"durable-{started:%Y%m%d-%H%M%S}.json")
    out.write_text(json.dumps(result, indent=2))
    print(f"{started:%Y-%m-%d %H:%M} UTC, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'phase':34} {'msgs':>7} {'msg/s':>7} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for ph in phases:
        print(f"{ph['phase']:34} {ph['messages']:>7} {ph['per_s']:>7} {ph['ratio_to_baseline']:>6} "
              f"{ph['p50_ms']:>7} {ph['p99_ms']:>7} {ph['max_ms']:>7}")  # fmt: skip
    print(f"history: {history}; errors: {errors[:3]}")
    return 0 if history["contiguous"] and history["stored"] == history["accepted"] and not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
