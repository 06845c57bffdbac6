"""Work over every connection of a process in steps that each hold the event loop for at most
``STEP`` seconds, so that one pass over thousands of connections (a fan-out, a round of pings)
does not stall all the others (issue 14: no pause of the loop over 20 ms)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

STEP = 0.005  # the longest one step works before it lets the loop run
CHECK = 32  # items handled between two looks at the clock (a look costs ~50 ns)


async def each(items: Iterable[T], act: Callable[[T], object]) -> None:
    """``act(item)`` for every item, yielding to the loop whenever a step has taken ``STEP``."""
    clock = time.perf_counter
    began = clock()
    for i, item in enumerate(items, 1):
        act(item)
        if not i % CHECK and clock() - began > STEP:
            await asyncio.sleep(0)
            began = clock()
