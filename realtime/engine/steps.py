"""Work over every connection of a process in steps that each hold the event loop for at most
``STEP`` seconds, so that one pass over thousands of connections (a fan-out, a round of pings)
does not stall all the others (issue 14: no pause of the loop over 20 ms)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

STEP = 0.005  # the longest one step works before it lets the loop run
CHECK = 32  # items handled between two looks at the clock (a look costs ~50 ns)


def step(start: int, n: int, chunk: Callable[[int, int], object]) -> int:
    """One step over positions ``start`` to ``n``: ``chunk(i, j)`` for ``[i, j)`` of at most CHECK
    positions, until the step has taken STEP. Returns where it stopped (``n`` when done)."""
    clock = time.perf_counter
    began = clock()
    i = start
    while i < n:
        j = min(i + CHECK, n)
        chunk(i, j)
        i = j
        if clock() - began > STEP:
            break
    return i


async def each(items: Sequence[T], act: Callable[[T], object]) -> None:
    """``act(item)`` for every item, in steps, yielding to the loop between them."""

    def chunk(i: int, j: int) -> None:
        for item in items[i:j]:
            act(item)

    i, n = 0, len(items)
    while True:
        i = step(i, n, chunk)
        if i >= n:
            return
        await asyncio.sleep(0)
