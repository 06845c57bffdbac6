"""Fan-out benchmark: N WebSocket subscribers in one room, a host publishing ~200-byte messages
through the HTTP publish API. ``python -m bench.fanout --help``; see bench/README.md for the figures.

Layout: the server side (app, SecantusDB, Redis) on core 0, the load generator on core 1.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench import pauses
from bench.loadgen import Generator, PhaseResult, cpu_self
from bench.servers import (
    Child,
    Cluster,
    all_cpu_seconds,
    core_times,
    cpu_seconds,
    foreign_cpu,
    raise_nofile,
    rss_bytes,
)
from config import load_settings
from realtime.auth.tokens import TokenService

CHANNEL = "room:bench"
RESULTS = Path(__file__).resolve().parent / "results"
SERVER_CORE, GENERATOR_CORE = 0, 1
OUTBOX_BYTES = 8 << 20  # per connection; the generator must never be cut off as a slow consumer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    p.add_argument("--subscribers", type=int, default=None, help="WebSocket subscribers (default 5000)")
    p.add_argument("--duration", type=float, default=None, help="seconds per measured phase (default 10)")
    p.add_argument(
        "--rates",
        default="10000,100000",
        help="offered loads for the latency phases, in deliveries/s (messages/s x subscribers)",
    )
    p.add_argument(
        "--scenario",
        default="all",
        help="comma-separated, in order, of bare (the baseline peer, bench/bare_tornado.py), single, "
        "redis; all = bare,single,redis",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 500 subscribers, 2 s phases")
    p.add_argument("--in-flight", type=int, default=4, help="publishes outstanding in the max-rate phases")
    p.add_argument("--no-max", action="store_true", help="skip the max-rate phases (latency phases only)")
    p.add_argument("--output", help="JSON results file (default bench/results/fanout-<time>.json)")
    args = p.parse_args(argv)
    args.subscribers = args.subscribers or (500 if args.quick else 5000)
    args.duration = args.duration or (2.0 if args.quick else 10.0)
    args.rates = [int(r) for r in str(args.rates).split(",") if r.strip()]
    names = ["bare", "single", "redis"] if args.scenario == "all" else args.scenario.split(",")
    unknown = [n for n in names if n not in ("bare", "single", "redis")]
    if unknown or not names:
        p.error(f"--scenario: unknown {unknown}; choose from bare, single, redis, all")
    args.scenarios = names
    return args


def pin_self() -> int | None:
    """Pin the generator to its core; the core for the servers, or None when not pinned."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2 or GENERATOR_CORE not in cores or SERVER_CORE not in cores:
        return None
    os.sched_setaffinity(0, {GENERATOR_CORE})
    return SERVER_CORE


def describe_layout(server_core: int | None) -> str:
    if server_core is None:
        return f"not pinned (cores available: {sorted(os.sched_getaffinity(0))})"
    return (
        f"servers on core {server_core}, load generator on core {GENERATOR_CORE}; in the Redis scenario "
        f"both app processes and redis-server share core {server_core}"
    )


def mint_tokens(cluster: Cluster, mongo: Child, n: int) -> list[str]:
    """Attendee tokens for webinar "bench", signed with the key the server uses."""
    env = cluster.app_env(mongo, None, 0, OUTBOX_BYTES)
    tokens = TokenService(load_settings(env))
    return [tokens.issue(f"bench-{i}", role="attendee", name=f"Bench {i}", webinar="bench") for i in range(n)]


def server_cpu(apps: list[Child]) -> float:
    return sum(cpu_seconds(a.pid) for a in apps)


def measure(
    gen: Generator, apps: list[Child], extra: list[Child], label: str, n: int, **phase: Any
) -> dict[str, Any]:
    paused = pauses.scrape_all(apps)
    before = server_cpu(apps)
    extra_before = {c.name: cpu_seconds(c.pid) for c in extra}
    core0 = core_times(SERVER_CORE)
    everyone = all_cpu_seconds()
    r: PhaseResult = gen.run_phase(**phase)
    used = server_cpu(apps) - before
    core1 = core_times(SERVER_CORE)
    ours = {os.getpid()} | {c.pid for c in apps + extra}
    foreign = foreign_cpu(everyone, all_cpu_seconds(), ours)
    core_busy, steal = core1[0] - core0[0], core1[1] - core0[1]
    out: dict[str, Any] = {
        "phase": label,
        "durable": phase["durable"],
        "offered_deliveries_per_s": phase["msg_rate"] * n if phase["msg_rate"] else None,
        "published": r.published,
        "publish_errors": r.publish_errors,
        "messages_per_s": round(r.published / phase["duration"], 2),
        "deliveries": r.delivered,
        "expected_deliveries": r.published * n,
        "deliveries_per_s": round(r.deliveries_per_second, 1),
        "server_cpu_s": round(used, 3),
        "server_cpu_s_per_100k": round(used / r.delivered * 1e5, 3) if r.delivered else None,
        "server_cpu_utilisation": round(used / r.wall_seconds, 3),
        "server_core_busy_s": round(core_busy, 3),
        "server_core_busy_s_per_100k": round(core_busy / r.delivered * 1e5, 3) if r.delivered else None,
        "server_core_steal_s": round(steal, 3),
        "foreign_cpu_s": round(foreign, 2),
        "foreign_cpu_utilisation": round(foreign / r.wall_seconds, 3),
        "other_cpu_s": {c.name: round(cpu_seconds(c.pid) - extra_before[c.name], 3) for c in extra},
        "generator_cpu_s": round(r.generator_cpu, 3),
        "generator_cpu_utilisation": round(r.generator_cpu / r.wall_seconds, 3),
        "wall_s": round(r.wall_seconds, 2),
        "closed_connections": r.closed_during,
        **r.percentiles(),
        "pauses": pauses.summary(paused, pauses.scrape_all(apps)),
    }
    o = out
    print(
        f"  {label:<22} {o['deliveries_per_s']:>9,.0f} deliv/s "
        f"{o['server_cpu_s_per_100k'] or 0:>5.2f} CPU-s/100k "
        f"({o['server_core_busy_s_per_100k'] or 0:.2f} core 0) "
        f"p50 {o['p50_ms']:>6.1f} p99 {o['p99_ms']:>6.1f} "
        f"max {o['max_ms']:>6.1f} ms lost {o['expected_deliveries'] - o['deliveries']} "
        f"gen CPU {o['generator_cpu_utilisation']:.0%} foreign CPU {o['foreign_cpu_utilisation']:.0%}; "
        f"loop lags > 20 ms {o['pauses']['loop_lags_over_20ms']}, longest {o['pauses']['longest_loop_lag']}, "
        f"collections {o['pauses']['collections']}, longest full {o['pauses']['longest_full_collection']}",
        flush=True,
    )
    return out


def run_scenario(name: str, args: argparse.Namespace, server_core: int | None) -> dict[str, Any]:
    n = args.subscribers
    q = args.quick
    cluster = Cluster(core=server_core)
    gen = Generator(CHANNEL)
    bare = name == "bare"
    try:
        if bare:
            apps, extra = [cluster.start_bare()], []
            tokens = [f"bare-{i}" for i in range(n)]  # it checks no token
        else:
            mongo = cluster.start_mongo()
            redis = cluster.start_redis() if name == "redis" else None
            apps = [cluster.start_app("app-a", mongo, redis, OUTBOX_BYTES, pauses.env())]
            if redis is not None:
                apps.append(cluster.start_app("app-b", mongo, redis, OUTBOX_BYTES, pauses.env()))
            extra = [mongo] + ([redis] if redis else [])
            tokens = mint_tokens(cluster, mongo, n)
        time.sleep(0.5)  # let start-up work settle before the baseline
        rss0 = [rss_bytes(a.pid) for a in apps]
        gen_cpu0 = cpu_self()
        paused = pauses.scrape_all(apps)
        took = gen.connect([a.port for a in apps], tokens, timeout=max(60.0, n / 50))
        connect_cpu = cpu_self() - gen_cpu0
        time.sleep(0.5 if q else 2.0)  # presence announcements and subscribe tasks finish
        connect_pauses = pauses.summary(paused, pauses.scrape_all(apps))
        print(f"[{name}] pauses while connecting: {connect_pauses}", flush=True)
        rss1 = [rss_bytes(a.pid) for a in apps]
        per_conn = sum(rss1[i] - rss0[i] for i in range(len(apps))) / n
        print(
            f"[{name}] {n} subscribers on {len(apps)} process(es) in {took:.1f}s; "
            f"server RSS {sum(rss0) / 2**20:.1f} -> {sum(rss1) / 2**20:.1f} MiB "
            f"= {per_conn / 1024:.1f} KB/conn",
            flush=True,
        )
        gen.open_publishers(apps[0].port, max(args.in_flight, 8), cluster.api_key)
        warm, drain = (min(0.5, args.duration / 4), 5.0) if q else (1.0, 10.0)
        common = {"warmup": warm, "drain": drain, "duration": args.duration}
        phases = []
        # Warm the server's code paths so the first measured phase is not paying for them.
        warm_up = {**common, "duration": 0.3 if q else 1.0}
        gen.run_phase(msg_rate=None, durable=False, in_flight=args.in_flight, **warm_up)
        if not bare:
            # One durable publisher first: it creates the channel's seq counter (concurrent first
            # upserts of it have failed with a 500 and left a hole; see bench/README.md).
            gen.run_phase(msg_rate=None, durable=True, in_flight=1, **{**common, "duration": 0.3})
        if not args.no_max:
            phases.append(measure(gen, apps, extra, "max, ephemeral", n, msg_rate=None, durable=False,
                                  in_flight=args.in_flight, **common))  # fmt: skip
            if name == "single":
                phases.append(measure(gen, apps, extra, "max, durable", n, msg_rate=None, durable=True,
                                      in_flight=args.in_flight, **common))  # fmt: skip
        for rate in args.rates:
            phases.append(measure(gen, apps, extra, f"{rate:,}/s, ephemeral", n, msg_rate=rate / n,
                                  durable=False, in_flight=8, **common))  # fmt: skip
        if name == "single" and args.rates:  # the bare peer stores nothing: no durable phase
            rate = args.rates[0]
            phases.append(measure(gen, apps, extra, f"{rate:,}/s, durable", n, msg_rate=rate / n,
                                  durable=True, in_flight=8, **common))  # fmt: skip
        return {
            "scenario": name,
            "processes": len(apps),
            "subscribers": n,
            "connect_seconds": round(took, 2),
            "connect_generator_cpu_s": round(connect_cpu, 2),
            "connect_pauses": connect_pauses,
            "server_rss_before_mib": round(sum(rss0) / 2**20, 1),
            "server_rss_after_mib": round(sum(rss1) / 2**20, 1),
            "server_bytes_per_idle_conn": round(per_conn),
            "generator": gen.summary(),
            "phases": phases,
        }
    finally:
        gen.close()
        cluster.close(keep_logs=RESULTS / f"logs-{name}")


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def over_bare(scenarios: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Each scenario's phases against the bare peer's phase of the same name in this run: CPU per
    delivery, p50 and p99 as ratios (product ÷ bare)."""
    bare = {p["phase"]: p for s in scenarios if s["scenario"] == "bare" for p in s["phases"]}
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for s in scenarios:
        if s["scenario"] == "bare":
            continue
        for p in s["phases"]:
            b = bare.get(p["phase"].replace(", durable", ", ephemeral"))
            if b is None:
                continue
            row = {}
            for key in ("server_cpu_s_per_100k", "p50_ms", "p99_ms", "deliveries_per_s"):
                mine, theirs = p.get(key), b.get(key)
                row[key] = round(mine / theirs, 2) if mine and theirs else None
            out.setdefault(s["scenario"], {})[p["phase"]] = row
    return out


def table(results: dict[str, Any]) -> str:
    rows = [
        "| scenario | phase | deliveries/s | server CPU-s/100k | core 0 busy s/100k "
        "| p50 ms | p99 ms | max ms | lost | gen CPU | foreign CPU |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in results["scenarios"]:
        for p in s["phases"]:
            rows.append(
                f"| {s['scenario']} | {p['phase']} | {p['deliveries_per_s']:,.0f} | "
                f"{p['server_cpu_s_per_100k']} | {p['server_core_busy_s_per_100k']} | "
                f"{p['p50_ms']:.1f} | {p['p99_ms']:.1f} | {p['max_ms']:.1f} | "
                f"{p['expected_deliveries'] - p['deliveries']} | {p['generator_cpu_utilisation']:.0%} | "
                f"{p['foreign_cpu_utilisation']:.0%} |"
            )
    lines = ["\n".join(rows), ""]
    for s in results["scenarios"]:
        lines.append(
            f"{s['scenario']}: {s['server_bytes_per_idle_conn'] / 1024:.1f} KB server RSS per idle "
            f"subscribed connection ({s['processes']} process(es), {s['subscribers']} subscribers)"
        )
    if "redis_vs_single" in results:
        ratio = results["redis_vs_single"]
        lines.append(f"Redis, 2 processes / single process, max deliveries/s: {ratio:.0%}")
    for scenario, phases in results.get("over_bare", {}).items():
        for phase, r in phases.items():
            lines.append(
                f"{scenario}, {phase} / bare: CPU {r['server_cpu_s_per_100k']}x, p50 {r['p50_ms']}x, "
                f"p99 {r['p99_ms']}x, deliveries/s {r['deliveries_per_s']}x"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: stop children
    server_core = pin_self()
    raise_nofile(args.subscribers + 500)
    results: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.fanout " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "layout": describe_layout(server_core),
        "subscribers": args.subscribers,
        "duration_s": args.duration,
        "scenarios": [],
    }
    print(f"layout: {results['layout']}", flush=True)
    for name in args.scenarios:
        results["scenarios"].append(run_scenario(name, args, server_core))
    by = {
        s["scenario"]: s["phases"][0]["deliveries_per_s"]
        for s in results["scenarios"]
        if s["phases"] and s["phases"][0]["phase"].startswith("max")
    }
    if "single" in by and "redis" in by and by["single"]:
        results["redis_vs_single"] = round(by["redis"] / by["single"], 3)
    results["over_bare"] = over_bare(results["scenarios"])
    out = Path(args.output) if args.output else RESULTS / f"fanout-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table(results))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
