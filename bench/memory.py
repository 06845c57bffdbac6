"""Where a subscribed connection's memory goes: the unchanged server under tracemalloc.

``python -m bench.memory --subscribers 2000`` starts SecantusDB and ``server.py`` (through
``bench/traced_server.py``, which only turns tracemalloc on), connects and subscribes the
subscribers, and prints the allocation sites that grew, per connection. tracemalloc counts Python
allocations only (not the kernel's socket buffers, nor allocator slack), so its total is below the
RSS growth the fan-out benchmark reports.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench.fanout import CHANNEL, OUTBOX_BYTES, describe_layout, mint_tokens, pin_self
from bench.loadgen import Generator
from bench.servers import Cluster, raise_nofile, rss_bytes


def snapshot(pid: int, path: Path, timeout: float = 60) -> None:
    path.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not path.exists():
        raise RuntimeError("the traced server wrote no snapshot")
    time.sleep(0.5)  # let the write finish (it is renamed into place)


def print_tracebacks(stats: list[Any], n: int, top: int, frames: int) -> None:
    """The growth grouped by whole traceback, innermost frame first."""
    print(f"\nby traceback ({frames} frames, innermost first):")
    for s in stats[:top]:
        print(f"{s.size_diff / n:>8.0f} B/conn {s.count_diff / n:>6.2f} objs/conn")
        for frame in s.traceback[::-1][:frames]:
            print(f"           {frame.filename}:{frame.lineno}")


def print_census(before: dict[str, list[int]], after: dict[str, list[int]], n: int, top: int) -> None:
    """Objects the collector tracks that grew, by type (``sys.getsizeof``: the object itself)."""
    rows = [
        (name, count - before.get(name, [0, 0])[0], size - before.get(name, [0, 0])[1])
        for name, (count, size) in after.items()
    ]
    rows.sort(key=lambda r: -r[2])
    print("\nby type (gc-tracked objects; getsizeof of each, not what it points to):")
    for name, count, size in rows[:top]:
        print(f"{size / n:>8.0f} B/conn {count / n:>6.2f} objs/conn  {name}")


def main(argv: list[str] | None = None) -> int:
    import tracemalloc

    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    p.add_argument("--subscribers", type=int, default=2000)
    p.add_argument("--top", type=int, default=25)
    p.add_argument(
        "--frames",
        type=int,
        default=1,
        help="frames kept per allocation; above 1 also prints the growth grouped by traceback",
    )
    args = p.parse_args(argv)
    n = args.subscribers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    server_core = pin_self()
    print(describe_layout(server_core))
    raise_nofile(n + 500)
    cluster = Cluster(core=server_core)
    gen = Generator(CHANNEL)
    try:
        mongo = cluster.start_mongo()
        out = cluster.dir / "snap.tm"
        env = {
            **cluster.app_env(mongo, None, 0, OUTBOX_BYTES),
            "BENCH_SNAPSHOT": str(out),
            "BENCH_TRACE_FRAMES": str(args.frames),
        }
        app = cluster.start_app(
            "app-traced", mongo, None, OUTBOX_BYTES, env=env, script="bench/traced_server.py"
        )
        tokens = mint_tokens(cluster, mongo, n)
        time.sleep(1)
        snapshot(app.pid, out)
        before = tracemalloc.Snapshot.load(str(out))
        census0 = json.loads(Path(f"{out}.census").read_text())
        rss0 = rss_bytes(app.pid)
        gen.connect([app.port], tokens, timeout=max(60.0, n / 20))
        time.sleep(2)
        snapshot(app.pid, out)
        after = tracemalloc.Snapshot.load(str(out))
        census1 = json.loads(Path(f"{out}.census").read_text())
        rss1 = rss_bytes(app.pid)
        stats = after.compare_to(before, "lineno")
        grown = sum(s.size_diff for s in stats)
        print(
            f"{n} subscribers: RSS +{(rss1 - rss0) / n / 1024:.1f} KB/conn, "
            f"traced Python +{grown / n:.0f} B/conn"
        )
        print(f"{'B/conn':>8} {'objs/conn':>9}  site")
        for s in stats[: args.top]:
            frame = s.traceback[0]
            print(f"{s.size_diff / n:>8.0f} {s.count_diff / n:>9.2f}  {frame.filename}:{frame.lineno}")
        if args.frames > 1:
            print_tracebacks(after.compare_to(before, "traceback"), n, args.top, args.frames)
        print_census(census0, census1, n, args.top)
        by_file = after.compare_to(before, "filename")
        print("\nby file:")
        for s in by_file[:15]:
            print(f"{s.size_diff / n:>8.0f} B/conn  {s.traceback[0].filename}")
    finally:
        gen.close()
        cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
