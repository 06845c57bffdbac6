"""Waiting for a state another process (or the database) reaches without telling anyone: the one poll
the tests share, for the few places no event exists to await."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(predicate: Callable[[], Awaitable[T]], timeout: float = 30.0, every: float = 0.05) -> T:
    """``await predicate()`` every ``every`` seconds until it is true; its value, or AssertionError
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(every)
    raise AssertionError("condition not met in time")
