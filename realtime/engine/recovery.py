"""Ordering and recovery: the hub's durable publications reach each subscriber in ``seq`` order, with
no duplicate and no gap that history could fill.

- A publication that arrives ahead of its predecessor waits in ``pending`` while the gap is repaired
  from history (a publisher on another process may still be writing it); so do the messages history
  holds past a hole. A hole left by a crashed publisher is skipped after ``repair_delays``, and what
  was stored after it is still delivered.
- A channel's first local subscriber starts it at the end of the contiguous stored run (``start``):
  seqs allocated but not yet written arrive through the broker later, and what history already
  holds past a hole is filled from it.
- After a broker outage every live channel is filled from history (``on_recover``).
- A subscriber that gives ``since`` first receives the backlog from history, up to the channel's
  position when it joined; what the channel delivers meanwhile is buffered for it (``recovering``),
  and what it already has is skipped (``floor``). When history cannot fill its gap it is told
  ``reset`` instead.

The fan-out itself (batching, the hot path) is the hub's: this module hands it publications in order
through ``fanout`` and takes over only for subscribers that are still catching up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from realtime import metrics
from realtime.engine.publication import Publication
from storage.history import History

if TYPE_CHECKING:
    from realtime.engine.hub import ChannelState, Subscriber

log = logging.getLogger("realtime.engine.recovery")

REPAIR_DELAYS = (0.05, 0.2, 1.0, 3.0)

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[Any]"]


class Recovery:
    def __init__(
        self,
        history: History,
        channels: dict[str, ChannelState],
        fanout: Callable[[ChannelState, Publication], None],
        spawn: Spawn,
        repair_delays: tuple[float, ...] = REPAIR_DELAYS,
    ) -> None:
        self.history = history
        self._channels = channels  # the hub's live channels (shared, not copied)
        self._fanout = fanout
        self._spawn = spawn
        self.repair_delays = repair_delays

    # -- live publications -----------------------------------------------------------------------

    def receive(self, channel: str, state: ChannelState, pub: Publication) -> None:
        """A durable publication from the broker: fanned out when it is next, held back when it is
        early (and the gap repaired), dropped when the channel already has it."""
        seq = pub.seq
        assert seq is not None
        if seq == state.last + 1 and not state.pending:
            state.last = seq
            self._fanout(state, pub)
        elif seq > state.last:
            state.pending[seq] = pub
            self._drain(state)
            self._await_gap(channel, state)

    def _await_gap(self, channel: str, state: ChannelState) -> None:
        if state.pending and state.repairing is None:
            state.repairing = self._spawn(self._repair(channel, state))

    def _drain(self, state: ChannelState) -> None:
        while state.last + 1 in state.pending:
            state.last += 1
            self._fanout(state, state.pending.pop(state.last))

    async def _repair(self, channel: str, state: ChannelState) -> None:
        try:
            for delay in self.repair_delays:
                await asyncio.sleep(delay)
                if not state.pending:
                    return
                await self._fill(channel, state, min(state.pending) - 1 - state.last)
            if state.pending:
                log.warning("%s: skipping a hole before seq %d (publisher lost)", channel, min(state.pending))
                state.last = min(state.pending) - 1
                self._drain(state)
        finally:
            state.repairing = None
            if state.pending and self._channels.get(channel) is state:
                state.repairing = self._spawn(self._repair(channel, state))

    def on_recover(self, channels: list[str]) -> None:
        """The broker is back after an outage: fill every live channel from history."""
        for channel in channels:
            if channel in self._channels:
                self._spawn(self._catch_up(channel))

    async def _catch_up(self, channel: str) -> None:
        state = self._channels.get(channel)
        if state is not None:
            await self._fill(channel, state, self.history.size)

    def start(self, channel: str, state: ChannelState, allocated: int) -> None:
        """A channel has just been set up at ``state.last``, the end of its stored run; seqs up to
        ``allocated`` may already be stored past a hole (published before this process listened)."""
        if allocated > state.last:
            self._spawn(self._fill(channel, state, allocated - state.last))

    async def _fill(self, channel: str, state: ChannelState, limit: int) -> None:
        """Deliver from history what follows ``state.last`` (up to ``limit``), then what waited;
        what lies past a hole waits in ``pending`` like an early arrival while the gap is repaired."""
        entries = await self.history.read(channel, after=state.last, limit=limit)
        if self._channels.get(channel) is not state:
            return  # its last subscriber left meanwhile
        for entry in entries:
            if entry.seq == state.last + 1:
                state.last = entry.seq
                state.pending.pop(entry.seq, None)
                self._fanout(state, Publication.from_entry(entry))
            elif entry.seq > state.last and entry.seq not in state.pending:
                state.pending[entry.seq] = Publication.from_entry(entry)
        self._drain(state)
        self._await_gap(channel, state)

    # -- a subscriber joining with ``since`` -----------------------------------------------------

    async def join(
        self,
        sub: Subscriber,
        channel: str,
        state: ChannelState,
        since: int | None,
        on_ready: Callable[[int, bool], None],
    ) -> None:
        """Bring ``sub`` (just added to ``state.subscribers``) up to date: ``on_ready(position,
        reset)``, then the backlog after ``since``, then what arrived meanwhile; from then on the
        hub's fan-out serves it like every other subscriber."""
        state.recovering[sub] = []
        joined = state.last  # the backlog goes up to here; the channel delivers what follows
        position, reset, backlog = joined, False, []
        if since is not None and since != joined:  # at the channel's position: nothing to read
            entries, reset = await self.history.since(channel, since)
            if not reset:
                backlog = [Publication.from_entry(e) for e in entries if e.seq <= joined]
                position = max(since, joined)
        on_ready(position, reset)
        for pub in backlog:
            sub.deliver(pub)
        for pub in state.recovering.pop(sub, []):
            if pub.seq is None or pub.seq > position:
                sub.deliver(pub)
                if pub.seq is not None:
                    position = pub.seq
        if position > state.last or state.batch:
            # ahead of the channel, or the channel's next fan-out still holds what it delivered
            # (``state.last`` counts it): skip for ``sub`` what it has
            state.floor[sub] = position

    def fan_out_while_joining(
        self, state: ChannelState, pubs: list[Publication], subscribers: tuple[Subscriber, ...]
    ) -> None:
        """The fan-out while some subscriber of the channel is still joining: buffer for those
        waiting on their backlog, skip what a subscriber already has, deliver to the rest."""
        delivered = 0
        for pub in pubs:
            for sub in subscribers:
                buffer = state.recovering.get(sub)
                if buffer is not None:
                    buffer.append(pub)
                    continue
                floor = state.floor.get(sub)
                if floor is not None and pub.seq is not None:
                    if pub.seq <= floor:
                        continue
                    del state.floor[sub]
                sub.deliver(pub)
                delivered += 1
        metrics.DELIVERIES.inc(delivered)
