"""Which worker this process is.

A supervisor (``WORKERS`` > 1, realtime/process/supervisor.py) starts each worker with
``WORKER_INDEX`` set to its slot, 0 to ``WORKERS - 1``; a restarted worker gets the slot of the one it
replaces. A single process has no index. With ``MAIL_PROCESS`` the supervisor also starts the mail
process, ``SERVER_ROLE=mail`` and the slot after the last worker's, which serves nothing and runs
the mail's jobs only (server.py, ``serve_mail``). Per-worker things derive from it: the ``worker`` field of
every log line and, for example, a per-worker port (``base + worker_index(environ)``).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping

log = logging.getLogger("realtime.process.worker")

WORKER_INDEX = "WORKER_INDEX"
SUPERVISOR_FD = "SERVER_SUPERVISOR_FD"  # the read end of a pipe the supervisor holds open
ROLE = "SERVER_ROLE"  # "mail": the mail process (MAIL_PROCESS), which serves no HTTP
MAIL = "mail"


def worker_index(environ: Mapping[str, str]) -> int | None:
    """This process's worker slot, or ``None`` when it is not a supervised worker."""
    raw = environ.get(WORKER_INDEX, "")
    return int(raw) if raw.isdigit() else None


def is_mail_process(environ: Mapping[str, str]) -> bool:
    return environ.get(ROLE) == MAIL


def watch_supervisor(environ: Mapping[str, str], gone: Callable[[], None]) -> None:
    """Call ``gone`` once when this worker's supervisor has ended (its pipe reads end-of-file)."""
    raw = environ.get(SUPERVISOR_FD, "")
    if not raw.isdigit():
        return
    fd = int(raw)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        if not os.read(fd, 1):
            loop.remove_reader(fd)
            log.error("the supervisor has gone; stopping")
            gone()

    loop.add_reader(fd, readable)
