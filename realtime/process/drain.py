"""Stopping without dropping anyone.

On SIGTERM (or SIGINT) a process drains in this order:

1. ``/readyz`` answers 503 ``draining`` at once, while everything keeps serving, new connections
   included, for ``DRAIN_SECONDS``: the load balancer takes the process out of rotation meanwhile.
2. The listener closes: new connections are refused.
3. The live connections (WebSocket and SSE) are closed with 1001, the i-th of n at
   ``i * DRAIN_CLOSE_WINDOW / n`` seconds, so their clients reconnect elsewhere spread over the window
   rather than all in the same second.
4. The rest closes (HTTP connections, background tasks, broker, database).

The whole stop takes at most ``SHUTDOWN_TIMEOUT`` seconds: a watchdog thread, which runs even when the
loop is stuck, ends the process with code 1 after that. A second signal cuts the waits of steps 1 and
3 short (Ctrl-C twice in a terminal).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Collection

import tornado.httpserver

from config import Settings
from realtime.engine.hub import Connection
from realtime.engine.session import GOING_AWAY

log = logging.getLogger("realtime.process.drain")

CONNECTIONS_WAIT = 3.0  # seconds for HTTP connections to finish once the live ones are closed
REASON = "server shutting down; reconnect"


class StopSignal:
    """The first SIGTERM/SIGINT (or :meth:`request`) asks for a stop; a second one sets ``hurry``."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.hurry = asyncio.Event()

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request)

    def request(self) -> None:
        if self.requested.is_set():
            self.hurry.set()
        self.requested.set()


async def pause(seconds: float, hurry: asyncio.Event) -> None:
    """Wait ``seconds``, or less if ``hurry`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(hurry.wait(), seconds)


async def close_spread(
    connections: Collection[Connection], code: int, reason: str, window: float, hurry: asyncio.Event
) -> None:
    """Close each of ``connections``, the i-th of n at ``i * window / n`` seconds from now (the first at
    once, the last at ``window * (n - 1) / n``); all at once when ``window`` is 0 or ``hurry`` is set."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = len(connections)
    for i, conn in enumerate(list(connections)):
        delay = start + window * i / n - loop.time()
        if delay > 0 and not hurry.is_set():
            await pause(delay, hurry)
        conn.close(code, reason)


def start_watchdog(seconds: float) -> threading.Timer:
    """End the process with code 1 after ``seconds`` unless cancelled; a thread, so it fires even when
    the event loop is blocked."""

    def expire() -> None:
        print(f"shutdown did not finish within SHUTDOWN_TIMEOUT ({seconds:g} s); exiting", file=sys.stderr)
        sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


async def drain(
    settings: Settings,
    stop: StopSignal,
    *,
    mark_draining: Callable[[], None],
    server: tornado.httpserver.HTTPServer,
    connections: Collection[Connection],
    close: Callable[[], Awaitable[None]],
) -> None:
    """Run the stop described in the module docstring; ``close`` closes everything else at the end."""
    watchdog = start_watchdog(settings.shutdown_timeout)
    try:
        mark_draining()
        log.info("draining: /readyz answers 503; still serving for %g s", settings.drain_seconds)
        await pause(settings.drain_seconds, stop.hurry)
        server.stop()
        live = list(connections)
        window = settings.drain_close_window
        log.info("listener closed; closing %d live connections over %g s", len(live), window)
        await close_spread(live, GOING_AWAY, REASON, window, stop.hurry)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.close_all_connections(), CONNECTIONS_WAIT)
        await close()
    finally:
        watchdog.cancel()
