"""Processes that share a database but cannot reach each other's clients.

Every server process records a heartbeat in the database (storage/processes.py) every
``PROCESS_HEARTBEAT`` seconds, naming its broker. Processes deliver live messages to each other only
through one shared Redis (the same server and key prefix): two processes where either uses the
in-process broker, or that use different Redis servers or prefixes, each reach only their own clients,
and live messages between them are lost. A process that sees such another live process logs a warning
(at start-up and whenever the set changes) and ``/readyz`` lists it under ``warnings``. A process
counts as gone three heartbeats after its last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from typing import Any

from config.redis_url import parse_redis_url
from storage.cancellation import raise_if_cancelling
from storage.processes import Processes

log = logging.getLogger("realtime.process.registry")

MISSED_BEATS = 3
MEMORY = "memory"


def broker_identity(redis_url: str, prefix: str) -> str:
    """Which broker a process delivers through, comparable across processes and without secrets:
    ``memory`` (its own process only), or the Redis server, database and key prefix."""
    if not redis_url:
        return MEMORY
    return f"{parse_redis_url(redis_url).identity()} prefix={prefix}"


class ProcessRegistry:
    """This process's heartbeat, and the warnings about the others it sees."""

    def __init__(self, processes: Processes, *, broker: str, worker: int | None, interval: float) -> None:
        self.processes = processes
        self.broker = broker
        self.interval = interval
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.fields = {"host": socket.gethostname(), "pid": os.getpid(), "worker": worker, "broker": broker}
        self.warnings: list[str] = []
        self._apart: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def reaches(self, other: dict[str, Any]) -> bool:
        """Whether live messages flow between this process and ``other``."""
        return self.broker != MEMORY and other.get("broker") == self.broker

    async def beat(self) -> None:
        """Record this process's heartbeat and compare it with every other live process."""
        await self.processes.beat(self.id, self.fields, self.interval * MISSED_BEATS)
        others = [p for p in await self.processes.live() if p["_id"] != self.id]
        apart = [p for p in others if not self.reaches(p)]
        ids = {p["_id"] for p in apart}
        if ids == self._apart:
            return
        self._apart = ids
        if not apart:
            self.warnings = []
            log.info("every server process on this database shares the broker %s", self.broker)
            return
        names = ", ".join(f"pid {p.get('pid')} on {p.get('host')} ({p.get('broker')})" for p in apart)
        warning = (
            f"{len(apart)} other server process(es) use this database but cannot exchange live messages "
            f"with this one ({self.broker}): {names}; their clients miss each other's messages. "
            "Give every process the same REDIS_URL and REDIS_PREFIX (docs/deploy.md)"
        )
        self.warnings = [warning]
        log.warning("%s", warning)

    async def start(self) -> None:
        """The first heartbeat now (so start-up warns), then one every ``interval`` seconds."""
        await self.beat()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.beat()
            except Exception:  # the database being away must not end the heartbeats
                raise_if_cancelling()
                log.warning("process heartbeat failed; retrying", exc_info=True)

    async def close(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        with contextlib.suppress(Exception):
            await self.processes.remove(self.id)
