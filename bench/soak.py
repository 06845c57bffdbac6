"""Idle soak: N subscribed WebSocket connections held for a while with one durable broadcast a second;
the server's memory sampled all along (issue 14: 20,000 connections for 10 minutes, RSS flat within
5 %). ``python -m bench.soak --help``; figures in bench/README.md.

Layout as bench/fanout.py: the app and SecantusDB on core 0, the load generator on core 1. The RSS
of the app and of the database is read from ``/proc/<pid>/status`` after every ``--sample`` seconds;
growth is the last sample over the first one taken after ``--warm`` seconds of broadcasting (the
first minutes fill caches that are meant to stay: history, pools). Each run first soaks the bare
Tornado peer (bench/bare_tornado.py) the same way (unless ``--no-bare``), so that the product's
latencies and growth come with that baseline's, measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench import pauses
from bench.fanout import CHANNEL, OUTBOX_BYTES, RESULTS, describe_layout, machine, mint_tokens, pin_self
from bench.loadgen import Generator
from bench.servers import Cluster, raise_nofile, rss_bytes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    p.add_argument("--connections", type=int, default=20_000, help="subscribed connections (20000)")
    p.add_argument("--minutes", type=float, default=10.0, help="how long they are held (10)")
    p.add_argument("--sample", type=float, default=30.0, help="seconds between memory samples (30)")
    p.add_argument("--warm", type=float, default=60.0, help="seconds of broadcasting before the first sample")
    p.add_argument("--no-bare", action="store_true", help="skip the bare Tornado baseline")
    p.add_argument("--output", help="JSON results file (default bench/results/soak-<time>.json)")
    return p.parse_args(argv)


def mib(n: int) -> float:
    return round(n / 2**20, 1)


def soak(name: str, args: argparse.Namespace, server_core: int | None) -> dict[str, Any]:
    """Hold the connections on ``bare`` or ``product`` and sample it; the figures of that target."""
    n = args.connections
    cluster = Cluster(core=server_core)
    gen = Generator(CHANNEL)
    samples: list[dict[str, Any]] = []
    try:
        mongo = None if name == "bare" else cluster.start_mongo()
        if mongo is None:
            app = cluster.start_bare()
            tokens = [f"bare-{i}" for i in range(n)]  # it checks no token
        else:
            app = cluster.start_app("app", mongo, None, OUTBOX_BYTES, pauses.env())
            tokens = mint_tokens(cluster, mongo, n)
        time.sleep(0.5)
        rss0 = rss_bytes(app.pid)
        took = gen.connect([app.port], tokens, timeout=max(120.0, n / 20))
        time.sleep(5)
        rss_idle = rss_bytes(app.pid)
        print(
            f"[{name}] {n} subscribed in {took:.1f} s; app RSS {mib(rss0)} -> {mib(rss_idle)} MiB "
            f"({(rss_idle - rss0) / n / 1024:.1f} KB/conn)",
            flush=True,
        )
        gen.open_publishers(app.port, 1, cluster.api_key)
        started = time.monotonic()
        end = started + args.minutes * 60
        while time.monotonic() < end:
            before = pauses.scrape_all([app])
            r = gen.run_phase(
                duration=min(args.sample, max(1.0, end - time.monotonic())),
                msg_rate=1.0,
                durable=True,
                in_flight=1,
                warmup=0.0,
                drain=5.0,
            )
            row = {
                "at_s": round(time.monotonic() - started, 1),
                "app_rss_mib": mib(rss_bytes(app.pid)),
                "db_rss_mib": mib(rss_bytes(mongo.pid)) if mongo is not None else None,
                "published": r.published,
                "lost": r.published * (gen.ready - gen.closed) - r.delivered,
                "publish_errors": r.publish_errors,
                "closed": gen.closed,
                **r.percentiles(),
                "pauses": pauses.summary(before, pauses.scrape_all([app])),
            }
            samples.append(row)
            print(
                f"  [{name}] {row['at_s']:>6.0f} s  app {row['app_rss_mib']:>7.1f} MiB  "
                f"db {row['db_rss_mib']} MiB  published {row['published']} lost {row['lost']} "
                f"closed {row['closed']} p50 {row['p50_ms']:.0f} p99 {row['p99_ms']:.0f} ms  "
                f"lags>20ms {row['pauses']['loop_lags_over_20ms']}",
                flush=True,
            )
        steady = [s for s in samples if s["at_s"] >= args.warm] or samples
        first, last = steady[0]["app_rss_mib"], steady[-1]["app_rss_mib"]
        print(
            f"[{name}] app RSS {first} MiB at {steady[0]['at_s']:.0f} s -> {last} MiB at "
            f"{steady[-1]['at_s']:.0f} s: {last / first - 1:+.1%}; lost {sum(s['lost'] for s in samples)}",
            flush=True,
        )
        return {
            "target": name,
            "connect_seconds": round(took, 1),
            "app_rss_start_mib": mib(rss0),
            "app_rss_idle_mib": mib(rss_idle),
            "kb_per_connection": round((rss_idle - rss0) / n / 1024, 2),
            "growth_after_warm": round(last / first - 1, 4),
            "max_app_rss_mib": max(s["app_rss_mib"] for s in samples),
            "median_p50_ms": statistics.median(s["p50_ms"] for s in steady),
            "median_p99_ms": statistics.median(s["p99_ms"] for s in steady),
            "lost": sum(s["lost"] for s in samples),
            "publish_errors": sum(s["publish_errors"] for s in samples),
            "closed": gen.closed,
            "samples": samples,
        }
    finally:
        gen.close()
        cluster.close(keep_logs=RESULTS / f"logs-soak-{name}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server_core = pin_self()
    raise_nofile(args.connections + 500)
    print(describe_layout(server_core), flush=True)
    targets = [soak(name, args, server_core) for name in ([] if args.no_bare else ["bare"]) + ["product"]]
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.soak " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "layout": describe_layout(server_core),
        "load_average": list(os.getloadavg()),
        "connections": args.connections,
        "targets": targets,
    }
    by = {t["target"]: t for t in targets}
    if "bare" in by:
        p, b = by["product"], by["bare"]
        results["product_over_bare"] = {
            key: round(p[key] / b[key], 2) if b[key] else None
            for key in ("median_p50_ms", "median_p99_ms", "kb_per_connection")
        }
        print(f"product / bare: {results['product_over_bare']}", flush=True)
    out = Path(args.output) if args.output else RESULTS / f"soak-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
