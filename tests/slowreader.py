"""Driving a live session's bounded outbox as a client that has stopped reading (the WebSocket and the
SSE transports share the outbox and its policy, so they share this test step too)."""

from __future__ import annotations

import asyncio
from typing import Any


async def overrun(hub: Any, session: Any, channel: str, pad: str) -> int:
    """Publish to ``channel``: ephemeral messages until the session's outbox drops one (which must
    not end the session), then durable ones until the outbox ends it with 4008 (slow consumer).
    Every loop stops at that event, however fast the machine; returns the most bytes buffered."""
    outbox = session.transport.outbox
    peak = 0
    for i in range(2000):  # far beyond the socket buffers, which the tests shrink
        await hub.publish(channel, "typing", {"i": i, "pad": pad}, durable=False)
        await asyncio.sleep(0)
        peak = max(peak, outbox.buffered)
        if outbox.dropped:
            break
    assert outbox.dropped > 0
    assert session in hub.connections  # ephemeral overflow alone does not end it
    for i in range(200):
        await hub.publish(channel, "notification", {"i": i, "pad": pad})
        peak = max(peak, outbox.buffered)
        if session.close_code is not None:
            break
    assert session.close_code == 4008
    return peak
