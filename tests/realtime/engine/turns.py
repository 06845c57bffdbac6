"""Seeing whether a pass over many subscribers lets the rest of the loop run: other work that writes
"tick" into the same timeline the pass writes its own entries into, at every turn it gets."""

from __future__ import annotations

import asyncio


async def ticking(timeline: list[str], done: asyncio.Event) -> None:
    while not done.is_set():
        timeline.append("tick")
        await asyncio.sleep(0)


def turns_between(timeline: list[str], what: str) -> int:
    """Turns the other work had between the first and the last ``what``."""
    at = [i for i, x in enumerate(timeline) if x == what]
    return timeline[at[0] : at[-1]].count("tick")
