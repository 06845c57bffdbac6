"""``server.py`` unchanged, with tracemalloc on; SIGUSR2 writes a snapshot to $BENCH_SNAPSHOT.

SIGUSR2, not SIGUSR1: ``server.main`` registers faulthandler on SIGUSR1 (every thread's stack),
which would replace this handler. $BENCH_TRACE_FRAMES (default 1) frames are kept per allocation:
more lets ``bench.memory --frames N`` group the growth by whole tracebacks.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def census() -> dict[str, list[int]]:
    """Objects the collector tracks, by type: [count, bytes (sys.getsizeof, __dict__ included)]."""
    out: dict[str, list[int]] = {}
    for obj in gc.get_objects():
        kind = type(obj)
        row = out.setdefault(f"{kind.__module__}.{kind.__qualname__}", [0, 0])
        row[0] += 1
        row[1] += sys.getsizeof(obj)
    return out


def dump(*_: object) -> None:
    gc.collect()
    path = os.environ["BENCH_SNAPSHOT"]
    snap = tracemalloc.take_snapshot()
    Path(path + ".census.tmp").write_text(json.dumps(census()))
    os.replace(path + ".census.tmp", path + ".census")
    snap.dump(path + ".tmp")
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    tracemalloc.start(int(os.environ.get("BENCH_TRACE_FRAMES", "1")))
    signal.signal(signal.SIGUSR2, dump)
    import server

    sys.exit(server.main())
