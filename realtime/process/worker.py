"""Which worker this process is.

A supervisor (``WORKERS`` > 1, realtime/process/supervisor.py) starts each worker with
``WORKER_INDEX`` set to its slot, 0 to ``WORKERS - 1``; a restarted worker gets the slot of the one it
replaces. A single process has no index. Per-worker things derive from it: the ``worker`` field of
every log line and, for example, a per-worker port (``base + worker_index(environ)``).
"""

from __future__ import annotations

from collections.abc import Mapping

WORKER_INDEX = "WORKER_INDEX"


def worker_index(environ: Mapping[str, str]) -> int | None:
    """This process's worker slot, or ``None`` when it is not a supervised worker."""
    raw = environ.get(WORKER_INDEX, "")
    return int(raw) if raw.isdigit() else None
