"""``server.py`` unchanged, with tracemalloc on; SIGUSR1 writes a snapshot to $BENCH_SNAPSHOT."""

from __future__ import annotations

import gc
import os
import signal
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def dump(*_: object) -> None:
    gc.collect()
    path = os.environ["BENCH_SNAPSHOT"]
    tracemalloc.take_snapshot().dump(path + ".tmp")
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    tracemalloc.start(1)
    signal.signal(signal.SIGUSR1, dump)
    import server

    sys.exit(server.main())
