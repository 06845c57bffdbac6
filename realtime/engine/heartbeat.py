"""Dead-peer detection for every live connection of a process with one timer, not one per connection.

Every ``interval`` seconds each connection is pinged; ``timeout`` seconds later, every connection
that has not answered (pong or any message) since its ping is closed. Half-open connections
therefore go within ``interval + timeout``. A transport whose client cannot answer (an SSE stream)
takes the ping as its keep-alive and counts as answered: its dead peers show when a write fails.
A round of pings is spread over half of the time between the pings' end and the next round
(``interval - timeout``), in SLICES slices, each sent in steps (realtime/engine/steps.py): sent at
once, 19,000 pings came back as 19,000 pongs at once, and a broadcast that met them waited behind
them for over a second (bench/README.md, "Idle soak"). Closes go in steps too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from realtime.engine import steps
from realtime.engine.hub import Connection

log = logging.getLogger("realtime.engine.heartbeat")

SLICES = 20  # a round of pings goes out in this many parts, spread over ``Heartbeat.spread``


class Heartbeat:
    def __init__(self, connections: Iterable[Connection], interval: float, timeout: float) -> None:
        self._connections = connections
        self.interval = interval
        self.timeout = min(timeout, interval)
        self.spread = (self.interval - self.timeout) / 2  # seconds a round of pings is spread over
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
            await asyncio.sleep(self.interval - self.timeout - self.spread)
            pinged = list(self._connections)
            await self._ping(pinged)
            await asyncio.sleep(self.timeout)
            dead = [c for c in pinged if not c.answered_since_ping()]
            await steps.each(dead, lambda conn: conn.close(1001, "ping timed out"))
            if dead:
                log.info("closed %d connections that did not answer a ping", len(dead))

    async def _ping(self, pinged: list[Connection]) -> None:
        """Ping every connection, in SLICES parts spread over ``spread`` seconds."""
        size = max(1, -(-len(pinged) // SLICES))
        for start in range(0, len(pinged), size):
            if start:
                await asyncio.sleep(self.spread / SLICES)
            await steps.each(pinged[start : start + size], lambda conn: conn.send_ping())
