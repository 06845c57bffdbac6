"""Passes over every connection let the event loop run between their steps (realtime/engine/steps.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from realtime.engine import steps
from realtime.engine.heartbeat import Heartbeat
from tests.realtime.engine.turns import ticking, turns_between


class SlowPeer:
    """A connection at the heartbeat's seam whose ping costs 0.1 ms, about a socket write."""

    transport_name = "ws"
    jti = ""
    user_id = "u"

    def __init__(self, timeline: list[str], answers: bool) -> None:
        self.timeline = timeline
        self.answers = answers
        self.closed: int | None = None

    def send_ping(self) -> None:
        self.timeline.append("ping")
        time.sleep(0.0001)

    def answered_since_ping(self) -> bool:
        return self.answers

    def close(self, code: int, reason: str) -> None:
        self.timeline.append("close")
        self.closed = code
        time.sleep(0.0001)


@pytest.mark.gen_test
async def test_each_yields_to_the_loop_when_a_step_has_taken_long_enough():
    timeline: list[str] = []
    done = asyncio.Event()
    other = asyncio.create_task(ticking(timeline, done))

    def act(n: int) -> None:
        timeline.append("act")
        time.sleep(0.0001)

    await steps.each(range(200), act)  # 20 ms of work
    done.set()
    await other
    assert timeline.count("act") == 200
    assert turns_between(timeline, "act") >= 2


@pytest.mark.gen_test(timeout=20)
async def test_a_round_of_pings_and_closes_does_not_hold_the_loop():
    timeline: list[str] = []
    peers = [SlowPeer(timeline, answers=i % 2 == 0) for i in range(200)]
    beat = Heartbeat(peers, interval=0.2, timeout=0.1)
    done = asyncio.Event()
    other = asyncio.create_task(ticking(timeline, done))
    beat.start()
    try:
        while timeline.count("close") < 100:  # noqa: ASYNC110 - the seam has no event
            await asyncio.sleep(0.01)
    finally:
        await beat.close()
        done.set()
        await other
    pings = [i for i, x in enumerate(timeline) if x == "ping"][:200]  # the first round
    assert timeline[pings[0] : pings[-1]].count("tick") >= 2
    assert turns_between(timeline, "close") >= 2
    assert {p.closed for p in peers if not p.answers} == {1001}  # the silent half, every one of them
    assert all(p.closed is None for p in peers if p.answers)


@pytest.mark.gen_test(timeout=20)
async def test_a_round_of_pings_is_spread_over_time():
    # sent at once, thousands of pings come back as thousands of pongs at once, and a broadcast
    # waits behind them: a round goes out in parts over half the gap before the next round
    timeline: list[str] = []
    peers = [SlowPeer(timeline, answers=True) for _ in range(100)]
    sent: list[float] = []
    loop = asyncio.get_running_loop()
    for peer in peers:
        peer.send_ping = lambda: sent.append(loop.time())  # type: ignore[method-assign]
    beat = Heartbeat(peers, interval=1.0, timeout=0.2)  # spread over (1.0 - 0.2) / 2 = 0.4 s
    beat.start()
    try:
        while len(sent) < 100:  # noqa: ASYNC110 - the seam has no event
            await asyncio.sleep(0.01)
    finally:
        await beat.close()
    first_round = sorted(sent[:100])
    assert first_round[-1] - first_round[0] >= 0.3  # 19 pauses of 0.02 s between 20 parts
    assert all(p.closed is None for p in peers)
