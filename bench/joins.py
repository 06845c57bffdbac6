"""Joins benchmark: N attendees of a live webinar connecting, authenticating and subscribing to its
room as fast as they can, then a reconnect storm after a server restart; the same against a bare
Tornado server (bench/bare_tornado.py) in the same run, for a ratio. ``python -m bench.joins --help``;
figures in bench/README.md.

Layout: the server (and its database) on core 0, the load generator and the ``/healthz`` probe on
core 1. Server CPU per join is ``utime+stime`` of the app process and the database process
(``/proc/<pid>/stat``) from the first connect until ``--settle`` seconds after the last
``subscribed`` (work deferred past the join, such as batched writes, is counted).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pymongo

from bench.fanout import GENERATOR_CORE, OUTBOX_BYTES, RESULTS, machine, pin_self
from bench.loadgen import Generator, cpu_self
from bench.servers import ROOT, Child, Cluster, all_cpu_seconds, cpu_seconds, foreign_cpu, raise_nofile
from config import load_settings
from realtime.auth.tokens import TokenService
from tests.servers import wait_port

WEBINAR = "joinbench"
CHANNEL = f"room:{WEBINAR}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.joins", description=__doc__)
    p.add_argument("--clients", type=int, default=5000, help="attendees joining (default 5000)")
    p.add_argument("--in-flight", type=int, default=100, help="joins under way at once (default 100)")
    p.add_argument("--settle", type=float, default=2.0, help="seconds of CPU counted after the last join")
    p.add_argument("--runs", type=int, default=1, help="repetitions (each: bare, then the product)")
    p.add_argument("--no-bare", action="store_true", help="skip the bare Tornado baseline")
    p.add_argument("--output", help="JSON results file (default bench/results/joins-<time>.json)")
    return p.parse_args(argv)


def seed(mongo: Child, n: int) -> None:
    """A live webinar and ``n`` approved registrations, written as the stores write them."""
    now = datetime.datetime.now(datetime.UTC)
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        f"mongodb://127.0.0.1:{mongo.port}/?directConnection=true"
    )
    try:
        db = client["bench"]
        db.webinars.insert_one(
            {
                "_id": WEBINAR,
                "owner_id": "bench-host",
                "status": "live",
                "title": "Join storm",
                "description": "",
                "starts_at": now,
                "timezone": "UTC",
                "duration_minutes": 60,
                "capacity": 0,
                "seats_taken": n,
                "seats_left": 0,
                "registration_mode": "open",
                "stream_url": "",
                "slow_mode_seconds": 0,
                "qa_moderation": False,
                "cohost_ids": [],
                "cohost_emails": [],
                "created_at": now,
                "live_at": now,
            }
        )
        regs = [
            {
                "_id": f"reg-{i}",
                "webinar_id": WEBINAR,
                "user_id": f"att-{i}",
                "email": f"att-{i}@example.com",
                "name": f"Attendee {i}",
                "status": "approved",
                "timezone": None,
                "created_at": now,
            }
            for i in range(n)
        ]
        for start in range(0, n, 1000):
            db.registrations.insert_many(regs[start : start + 1000])
    finally:
        client.close()


def room_seq(mongo: Child) -> int:
    """The room's last ``seq``: where a reconnecting client resumes from."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        f"mongodb://127.0.0.1:{mongo.port}/?directConnection=true"
    )
    try:
        doc = client["bench"].channel_seq.find_one({"_id": CHANNEL})
        return int(doc["seq"]) if doc else 0
    finally:
        client.close()


def mint_tokens(cluster: Cluster, mongo: Child, n: int) -> list[str]:
    """Join-link tokens of the registrants, signed with the key the server uses."""
    tokens = TokenService(load_settings(cluster.app_env(mongo, None, 0, OUTBOX_BYTES)))
    return [
        tokens.issue(f"att-{i}", role="attendee", name=f"Attendee {i}", webinar=WEBINAR, ttl=3600)
        for i in range(n)
    ]


class Probe:
    """``python -m bench.healthz_probe`` on the generator's core, for the length of a storm."""

    def __init__(self, port: int) -> None:
        argv = [sys.executable, "-m", "bench.healthz_probe", "--port", str(port)]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            preexec_fn=lambda: os.sched_setaffinity(0, {GENERATOR_CORE}) if pin_ok() else None,
        )

    def result(self) -> dict[str, Any]:
        out, _ = self.proc.communicate(b"", timeout=30)
        return dict(json.loads(out.decode().strip().splitlines()[-1]))


def pin_ok() -> bool:
    return GENERATOR_CORE in os.sched_getaffinity(0)


def storm(
    label: str,
    port: int,
    tokens: list[str],
    watched: list[Child],
    args: argparse.Namespace,
    since: int | None,
) -> tuple[Generator, dict[str, Any]]:
    """Every token joins at once; the CPU of ``watched`` and the probe's latencies meanwhile."""
    gen = Generator(CHANNEL)
    cpu0 = {c.name: cpu_seconds(c.pid) for c in watched}
    everyone = all_cpu_seconds()
    gen_cpu0 = cpu_self()
    probe = Probe(port)
    timeout = max(120.0, len(tokens) / 10)
    started = time.monotonic()
    timed_out = None
    try:
        took = gen.connect(
            [port],
            tokens,
            timeout=timeout,
            since=since,
            in_flight_max=args.in_flight,
            refusals_ok=True,
        )
    except RuntimeError as exc:  # not all answered in time: a figure too (joins/s of those that were)
        took, timed_out = time.monotonic() - started, str(exc)[:300]
    finally:
        health = probe.result()
    time.sleep(args.settle)
    used = {c.name: round(cpu_seconds(c.pid) - cpu0[c.name], 3) for c in watched}
    ours = {os.getpid(), probe.proc.pid} | {c.pid for c in watched}
    foreign = foreign_cpu(everyone, all_cpu_seconds(), ours)
    total = sum(used.values())
    n = len(tokens)
    out = {
        "phase": label,
        "clients": n,
        "seconds": round(took, 2),
        "joins_per_s": round(gen.ready / took, 1),
        "refused": gen.closed,
        "timed_out": timed_out,
        "server_cpu_s": used,
        "server_cpu_ms_per_join": round(total / n * 1000, 3),
        "generator_cpu_s": round(cpu_self() - gen_cpu0, 2),
        "foreign_cpu_utilisation": round(foreign / (took + args.settle), 2),
        "healthz": health,
        "generator": gen.summary(),
    }
    print(
        f"  {label:<24} {gen.ready}/{n} ({gen.closed} refused) in {took:6.2f} s = "
        f"{out['joins_per_s']:>7,.0f} joins/s, "
        f"{out['server_cpu_ms_per_join']:.3f} ms CPU/join {used}, /healthz p99 {health['p99_ms']} "
        f"max {health['max_ms']} ms ({health['count']} probes, {health['failures']} failed), "
        f"foreign CPU {out['foreign_cpu_utilisation']:.0%}",
        flush=True,
    )
    return gen, out


def restart(cluster: Cluster, child: Child, start: Any) -> Child:
    """Stop ``child`` (SIGTERM, as a deploy does) and start it again on the same port."""
    child.proc.terminate()
    child.proc.wait(30)
    cluster.children.remove(child)
    new: Child = start(child.port)
    wait_port(new.port, 60, new.proc)
    return new


def run_target(name: str, args: argparse.Namespace, server_core: int | None) -> dict[str, Any]:
    """Join storm then reconnect storm against ``product`` or ``bare``."""
    n = args.clients
    cluster = Cluster(core=server_core)
    gens: list[Generator] = []
    try:
        mongo = cluster.start_mongo()

        def start(port: int | None = None) -> Child:
            if name == "bare":
                return cluster.start_bare(name, port)
            return cluster.start_app(name, mongo, None, OUTBOX_BYTES, port=port)

        app = start()
        if name == "product":
            seed(mongo, n)
        tokens = mint_tokens(cluster, mongo, n)
        time.sleep(0.5)
        watched = [app, mongo] if name == "product" else [app]
        gen, first = storm("join storm", app.port, tokens, watched, args, since=None)
        gens.append(gen)
        app = restart(cluster, app, start)
        gen.close()
        watched = [app, mongo] if name == "product" else [app]
        since = room_seq(mongo) if name == "product" else 0
        gen, again = storm("reconnect after restart", app.port, tokens, watched, args, since=since)
        gens.append(gen)
        return {"target": name, "phases": [first, again]}
    finally:
        for g in gens:
            g.close()
        cluster.close(keep_logs=RESULTS / f"logs-joins-{name}")


def ratios(run: dict[str, Any]) -> dict[str, Any]:
    by = {t["target"]: {p["phase"]: p for p in t["phases"]} for t in run["targets"]}
    if "bare" not in by or "product" not in by:
        return {}
    out: dict[str, Any] = {}
    for phase, p in by["product"].items():
        b = by["bare"][phase]
        cpu, bare_cpu = p["server_cpu_ms_per_join"], b["server_cpu_ms_per_join"]
        out[phase] = {
            "joins_per_s_product_over_bare": round(p["joins_per_s"] / b["joins_per_s"], 3),
            "cpu_per_join_product_over_bare": round(cpu / bare_cpu, 2) if bare_cpu else None,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop children
    server_core = pin_self()
    raise_nofile(args.clients + 500)
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.joins " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "layout": "server and database on core 0, generator and probe on core 1"
        if server_core is not None
        else "not pinned",
        "runs": [],
    }
    for i in range(args.runs):
        load = os.getloadavg()
        print(f"run {i + 1}: load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}", flush=True)
        run: dict[str, Any] = {"load_average": [round(x, 2) for x in load], "targets": []}
        for name in ([] if args.no_bare else ["bare"]) + ["product"]:
            print(f"[{name}]", flush=True)
            run["targets"].append(run_target(name, args, server_core))
        run["ratios"] = ratios(run)
        if run["ratios"]:
            print(f"  product / bare: {json.dumps(run['ratios'])}", flush=True)
        results["runs"].append(run)
    out = Path(args.output) if args.output else RESULTS / f"joins-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
