"""Dead-peer detection for every live connection of a process with one timer, not one per connection.

Every ``interval`` seconds each connection is pinged; ``timeout`` seconds later, every connection
that has not answered (pong or any message) since its ping is closed. Half-open connections
therefore go within ``interval + timeout``. A transport whose client cannot answer (an SSE stream)
takes the ping as its keep-alive and counts as answered: its dead peers show when a write fails.
Pings and closes go out in steps (realtime/engine/steps.py): a round of pings to 5,000 connections
held the loop for about 100 ms in one step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from realtime.engine import steps
from realtime.engine.hub import Connection

log = logging.getLogger("realtime.engine.heartbeat")


class Heartbeat:
    def __init__(self, connections: Iterable[Connection], interval: float, timeout: float) -> None:
        self._connections = connections
        self.interval = interval
        self.timeout = min(timeout, interval)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeat")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval - self.timeout)
            pinged = list(self._connections)
            await steps.each(pinged, lambda conn: conn.send_ping())
            await asyncio.sleep(self.timeout)
            dead = [c for c in pinged if not c.answered_since_ping()]
            await steps.each(dead, lambda conn: conn.close(1001, "ping timed out"))
            if dead:
                log.info("closed %d connections that did not answer a ping", len(dead))
