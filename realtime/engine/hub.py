"""The hub: this process's registry of live connections and of each channel's local subscribers,
the one publish path, and the fan-out that hands every publication to the channel's subscribers.

Delivery contract:
- Durable messages (``durable=True``) are persisted with a per-channel ``seq`` before they are
  published, and every subscriber receives them in ``seq`` order with no duplicate. A message that
  arrives ahead of its predecessor waits while the gap is repaired from history (a publisher on
  another process may still be writing it); a hole left by a crashed publisher is skipped after
  ``REPAIR_DELAYS`` (about 4 s).
- A channel's first local subscriber subscribes upstream (confirmed by the broker) before the hub
  reads how far history is complete; it starts there, not at the seq counter, which counts seqs
  still being written. What the broker brings meanwhile is held, then ordered like the rest.
- A subscriber that gives ``since`` receives exactly the messages after it, then live ones; when
  history cannot fill the gap it is told ``reset`` instead.
- After a broker outage every live channel is repaired from history; a durable publish the broker
  refused is retried in the background, and is in history for recovery either way.
- Ephemeral messages (``durable=False``) have no ``seq``, are not stored and may be dropped.
- Each publication is encoded once (realtime/engine/publication.py) and handed to every subscriber.
- A fan-out to many subscribers yields to the event loop every ``steps.STEP`` seconds of writing
  (realtime/engine/steps.py), so that one room of thousands does not stall every other connection
  of the process; a channel's next fan-out starts after the last one ends and a subscriber joins
  between two fan-outs, so each subscriber still sees every message once and in order.

Ordering, gap repair and catch-up live in realtime/engine/recovery.py, kicks across processes in
realtime/engine/control.py; this module keeps the registry, publishing and the batched fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol

from realtime import metrics
from realtime.engine import steps
from realtime.engine.broker import Broker, BrokerUnavailable
from realtime.engine.control import CONTROL, Control
from realtime.engine.publication import Publication
from realtime.engine.recovery import REPAIR_DELAYS, Recovery
from storage.history import History
from storage.idempotency import Idempotency

log = logging.getLogger("realtime.engine.hub")

RETRY_PUBLISH_FOR = 60.0
BUSY_FANOUT = 0.005  # a fan-out this long (about 500+ subscribers) makes a channel "busy"
BATCH_WAIT = 0.025  # the longest a busy channel's next fan-out waits to batch
CLEANUP_WAIT = 5.0  # how long shutdown waits for closed connections to finish leaving
# How long ``close_all`` waits for the peers' close handshakes before it ends the connections left
# (a client that never answers would hold its end, and so its leaves, for Tornado's 5 s)
CLOSE_WAIT = 2.0


class Subscriber(Protocol):
    """What the hub hands a channel's publications to (a live session, realtime/engine/session.py)."""

    @property
    def user_id(self) -> str: ...

    def deliver(self, pub: Publication) -> None:
        """One publication (recovery and buffered paths)."""

    def push(self, frame: bytes, droppable: bool, pubs: list[Publication]) -> None:
        """The hot path: ``pubs`` (one or more, in order) and their WebSocket frames joined in
        ``frame``, shared by every subscriber; ``droppable`` when all of them are ephemeral."""

    def kick(self, channel: str, code: int, reason: str) -> None:
        """Close the connection with ``code``: it is on ``channel``, or with ``*`` on any."""


class Connection(Subscriber, Protocol):
    """A live client connection in the hub's registry (``Hub.connections``)."""

    @property
    def jti(self) -> str:
        """The id of the token it authenticated with ("" before it has)."""

    @property
    def transport_name(self) -> str:
        """``ws`` or ``sse`` (the metrics' ``transport`` label)."""

    def close(self, code: int, reason: str) -> None: ...

    def abort(self) -> None:
        """End the connection now, without waiting for the peer's side of a close."""

    def send_ping(self) -> None:
        """A liveness probe (realtime/engine/heartbeat.py)."""

    def answered_since_ping(self) -> bool: ...


class ChannelState:
    __slots__ = (
        "subscribers",
        "last",
        "pending",
        "repairing",
        "recovering",
        "floor",
        "batch",
        "cost",
        "flushed",
        "flushing",
    )

    def __init__(self, last: int) -> None:
        self.subscribers: set[Subscriber] = set()
        # ordering and recovery (realtime/engine/recovery.py)
        self.last = last  # highest seq delivered here, in order
        self.pending: dict[int, Publication] = {}  # arrived ahead of a gap
        self.repairing: asyncio.Task[None] | None = None
        self.recovering: dict[Subscriber, list[Publication]] = {}  # joining: buffered for them
        self.floor: dict[Subscriber, int] = {}  # a subscriber already has messages up to this seq
        # batching
        self.batch: list[Publication] = []  # in order, fanned out together at the end of this tick
        self.cost = 0.0  # seconds the last fan-out took
        self.flushed = 0.0  # loop time it ended
        self.flushing: asyncio.Future[None] | None = None  # a fan-out in steps is under way


class Hub:
    def __init__(
        self,
        broker: Broker,
        history: History,
        idempotency: Idempotency,
        repair_delays: tuple[float, ...] = REPAIR_DELAYS,
    ) -> None:
        self.broker = broker
        self.history = history
        self.idempotency = idempotency  # a send's idempotency_key: the first result answers its retries
        self._channels: dict[str, ChannelState] = {}
        self._pending_states: dict[str, asyncio.Future[ChannelState]] = {}
        self.connections: set[Connection] = set()  # open: between ``opened`` and ``ended``
        self._all_ended: asyncio.Event | None = None  # set by the last ``ended`` during ``close_all``
        self._tasks: set[asyncio.Task[Any]] = set()
        self._cleanups: set[asyncio.Task[Any]] = set()
        self._holding: dict[str, list[bytes]] = {}  # channels being set up: what the broker brought
        self._recovered: set[str] = set()  # channels being set up when the broker came back
        self.settle = sum(repair_delays)  # a missing seq older than this is a crashed publisher's hole
        self.recovery = Recovery(history, self._channels, self._fanout, self._spawn, repair_delays)
        self.control = Control(broker, self.kick_local)

    async def start(self) -> None:
        await self.broker.start(self._on_message, self._on_recover)
        await self.control.start()

    def _on_recover(self, channels: list[str]) -> None:
        self._recovered.update(c for c in channels if c in self._holding)
        self.recovery.on_recover(channels)

    def track(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` (a closed connection leaving its channels) so that ``close`` lets it finish."""
        task = asyncio.get_running_loop().create_task(coro)
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        return task

    @property
    def leaving(self) -> int:
        """Closed connections still leaving their channels."""
        return len(self._cleanups)

    async def close(self) -> None:
        if self._cleanups:
            await asyncio.wait(list(self._cleanups), timeout=CLEANUP_WAIT)
        for task in list(self._tasks) + list(self._cleanups):
            task.cancel()
        for task in list(self._tasks) + list(self._cleanups):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for state in self._channels.values():
            if state.repairing is not None:
                state.repairing.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def channel_count(self) -> int:
        return len(self._channels)

    def subscriber_count(self, channel: str) -> int:
        state = self._channels.get(channel)
        return len(state.subscribers) if state else 0

    def subscription_count(self) -> int:
        return sum(len(state.subscribers) for state in self._channels.values())

    def connection_counts(self) -> dict[str, int]:
        """Open connections by transport name."""
        counts: dict[str, int] = {}
        for conn in self.connections:
            counts[conn.transport_name] = counts.get(conn.transport_name, 0) + 1
        return counts

    # -- publishing ------------------------------------------------------------------------------

    async def publish(self, channel: str, type: str, data: Any, *, durable: bool = True) -> int | None:
        """Publish to every subscriber on every process; returns the seq of a durable message."""
        if durable:
            entry = await self.history.append(channel, type, data)
            pub = Publication.from_entry(entry)
        else:
            pub = Publication.build(channel, type, data, int(time.time() * 1000), None)
        (metrics.PUBLISHED_DURABLE if durable else metrics.PUBLISHED_EPHEMERAL).inc()
        try:
            await self.broker.publish(channel, pub.to_wire())
        except BrokerUnavailable as exc:
            if not durable:
                log.debug("ephemeral %s on %s dropped: broker unavailable", type, channel)
                return None
            log.warning(
                "broker refused %s #%s on %s (%s); retrying in background", type, pub.seq, channel, exc
            )
            self._spawn(self._retry_publish([(channel, pub.to_wire())]))
        return pub.seq

    async def publish_many(
        self, items: Iterable[tuple[str, str, Any]], *, durable: bool = True
    ) -> list[int | None]:
        """Publish many messages (typically one per personal channel) with bulk I/O."""
        items = list(items)
        if durable:
            pubs = [Publication.from_entry(e) for e in await self.history.append_many(items)]
        else:
            now = int(time.time() * 1000)
            pubs = [Publication.build(c, t, d, now, None) for c, t, d in items]
        wire = [(p.channel, p.to_wire()) for p in pubs]
        (metrics.PUBLISHED_DURABLE if durable else metrics.PUBLISHED_EPHEMERAL).inc(len(pubs))
        try:
            await self.broker.publish_many(wire)
        except BrokerUnavailable:
            if durable:
                self._spawn(self._retry_publish(wire))
        return [p.seq for p in pubs]

    async def _retry_publish(self, wire: list[tuple[str, bytes]]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETRY_PUBLISH_FOR
        delay = 0.1
        while loop.time() < deadline:
            await asyncio.sleep(delay)
            try:
                await self.broker.publish_many(wire)
                return
            except BrokerUnavailable:
                delay = min(delay * 2, 5.0)
        log.error("gave up re-publishing %d durable messages; clients recover them from history", len(wire))

    # -- kicking ---------------------------------------------------------------------------------

    async def kick(self, channel: str, user_id: str, code: int, reason: str, jti: str | None = None) -> None:
        """Close ``user_id``'s connections on ``channel`` on every process. ``*``: all their
        connections, or with ``jti`` only those authenticated with that token (logout)."""
        await self.control.kick(channel, user_id, code, reason, jti)

    def kick_local(self, channel: str, user_id: str, code: int, reason: str, jti: str | None = None) -> None:
        """:meth:`kick` on this process only (realtime/engine/control.py calls it)."""
        targets: set[Subscriber]
        if channel == "*":
            targets = {c for c in self.connections if c.user_id == user_id and (jti is None or c.jti == jti)}
        else:
            # The user's connections too: one still joining ``channel`` is not among its subscribers
            # yet (each connection's ``kick`` decides whether it is on the channel).
            state = self._channels.get(channel)
            targets = {s for s in state.subscribers if s.user_id == user_id} if state else set()
            targets |= {c for c in self.connections if c.user_id == user_id}
        for target in targets:
            target.kick(channel, code, reason)

    def opened(self, conn: Connection) -> None:
        self.connections.add(conn)

    def ended(self, conn: Connection) -> None:
        """``conn``'s connection has ended (its leaving, if any, is :meth:`track`-ed next)."""
        self.connections.discard(conn)
        if not self.connections and self._all_ended is not None:
            self._all_ended.set()

    async def close_all(self, code: int, reason: str, wait: float = CLOSE_WAIT) -> None:
        """Close every connection (the server's stop), wait up to ``wait`` seconds for their close
        handshakes, then end those left at once. When it returns every connection has ended and
        its leaving has started, so :meth:`close` lets the leaving finish before the stores close
        (an attendee's leave was lost when the peer's answer came after the database had closed)."""
        for conn in list(self.connections):
            conn.close(code, reason)
        await self._until_ended(wait)
        for conn in list(self.connections):
            conn.abort()
        await self._until_ended(wait)  # an abort's end comes a turn or two of the loop later

    async def _until_ended(self, timeout: float) -> None:
        if not self.connections:
            return
        self._all_ended = asyncio.Event()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_ended.wait(), timeout)
        finally:
            self._all_ended = None

    # -- subscribing -----------------------------------------------------------------------------

    async def subscribe(
        self, sub: Subscriber, channel: str, since: int | None, on_ready: Callable[[int, bool], None]
    ) -> None:
        """Add ``sub`` to ``channel``. ``on_ready(position, reset)`` is called before any message
        for the channel is delivered to ``sub``; then missed messages (after ``since``), then live."""
        while True:
            state = await self._acquire(channel)
            if state.flushing is None:
                break
            # a fan-out in steps is under way: join after it, as at any other moment between two
            # fan-outs (its subscribers were taken when it began; the join's backlog covers it)
            await asyncio.shield(state.flushing)
        state.subscribers.add(sub)
        try:
            await self.recovery.join(sub, channel, state, since, on_ready)
        except BaseException:
            await self.unsubscribe(sub, channel)
            raise

    async def _acquire(self, channel: str) -> ChannelState:
        """The channel's state, subscribing upstream on the first local subscriber."""
        state = self._channels.get(channel)
        if state is not None:
            return state
        waiting = self._pending_states.get(channel)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[ChannelState] = asyncio.get_running_loop().create_future()
        self._pending_states[channel] = future
        self._holding[channel] = []
        try:
            # Listen first, then read where history is complete: whatever is written after that
            # read is published after it, so it arrives (and is held until the state exists).
            await self.broker.subscribe(channel)
            last, allocated = await self.history.stored_position(channel, self.settle)
            state = ChannelState(last)
            self._channels[channel] = state
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
            future.exception()  # mark retrieved for waiters that never come
            with contextlib.suppress(Exception):
                await self.broker.unsubscribe(channel)
            raise
        finally:
            del self._pending_states[channel]
            held = self._holding.pop(channel)
            recovered = channel in self._recovered  # the broker came back during the set-up
            self._recovered.discard(channel)
        for payload in held:
            self._on_message(channel, payload)
        self.recovery.start(channel, state, allocated)
        if recovered:
            self.recovery.on_recover([channel])
        future.set_result(state)
        return state

    async def unsubscribe(self, sub: Subscriber, channel: str) -> None:
        state = self._channels.get(channel)
        if state is None or sub not in state.subscribers:
            return
        state.subscribers.discard(sub)
        state.recovering.pop(sub, None)
        state.floor.pop(sub, None)
        if not state.subscribers:
            del self._channels[channel]
            if state.repairing is not None:
                state.repairing.cancel()
            try:
                await self.broker.unsubscribe(channel)
            except Exception:  # noqa: BLE001 - an upstream failure must not leak the local side
                log.warning("upstream unsubscribe of %s failed", channel, exc_info=True)

    # -- receiving and fan-out -------------------------------------------------------------------

    def _on_message(self, channel: str, payload: bytes) -> None:
        if channel == CONTROL:
            self.control.receive(payload)
            return
        state = self._channels.get(channel)
        if state is None:
            held = self._holding.get(channel)
            if held is not None:
                held.append(payload)
            return
        pub = Publication.from_wire(channel, payload)
        if pub.seq is None:
            self._fanout(state, pub)
        else:
            self.recovery.receive(channel, state, pub)

    def _fanout(self, state: ChannelState, pub: Publication) -> None:
        """Queue ``pub`` for the channel's next fan-out: what is queued by then reaches each
        subscriber in one write. The fan-out runs at the end of this tick, unless the channel is
        busy (its last fan-out was expensive and has just ended): then it waits up to that cost
        (at most BATCH_WAIT) so that messages arriving meanwhile share one write per subscriber
        (a ``send`` per subscriber per message is what saturates a core)."""
        if not state.batch and state.flushing is None:
            self._schedule_flush(state)
        state.batch.append(pub)

    def _schedule_flush(self, state: ChannelState) -> None:
        loop = asyncio.get_running_loop()
        if state.cost > BUSY_FANOUT and loop.time() - state.flushed < state.cost:
            loop.call_later(min(state.cost, BATCH_WAIT), self._flush, state)
        else:
            loop.call_soon(self._flush, state)

    def _flush(self, state: ChannelState) -> None:
        pubs, state.batch = state.batch, []
        if not pubs:
            return
        subscribers = tuple(state.subscribers)
        if state.recovering or state.floor:
            self.recovery.fan_out_while_joining(state, pubs, subscribers)
            return
        frame = pubs[0].ws_frame if len(pubs) == 1 else b"".join(p.ws_frame for p in pubs)
        droppable = all(p.seq is None for p in pubs)
        self._write(state, pubs, frame, droppable, subscribers, 0, 0.0, len(subscribers))

    def _write(
        self,
        state: ChannelState,
        pubs: list[Publication],
        frame: bytes,
        droppable: bool,
        subscribers: tuple[Subscriber, ...],
        start: int,
        spent: float,
        reached: int,
    ) -> None:
        """Push to ``subscribers[start:]`` for one step (realtime/engine/steps.py), then continue in
        a later turn of the loop. After the first step a subscriber that has left since is skipped."""
        current = state.subscribers
        skipped = 0

        def push_all(i: int, j: int) -> None:
            for sub in subscribers[i:j]:
                sub.push(frame, droppable, pubs)

        def push_present(i: int, j: int) -> None:
            nonlocal skipped
            for sub in subscribers[i:j]:
                if sub in current:
                    sub.push(frame, droppable, pubs)
                else:
                    skipped += 1

        clock = time.perf_counter
        began = clock()
        n = len(subscribers)
        try:
            i = steps.step(start, n, push_all if start == 0 else push_present)
        except Exception:  # noqa: BLE001 - a subscriber's failure must not wedge the channel
            log.exception("a fan-out to %d subscribers failed", n)
            i = n  # ends here, as the fan-out in one step did; the channel's next one still runs
        reached -= skipped
        spent += clock() - began
        loop = asyncio.get_running_loop()
        if i < n:
            if state.flushing is None:
                state.flushing = loop.create_future()
            loop.call_soon(self._write, state, pubs, frame, droppable, subscribers, i, spent, reached)
            return
        state.cost = spent
        state.flushed = loop.time()
        metrics.fanned_out(pubs, reached, spent)
        if state.flushing is not None:
            state.flushing.set_result(None)
            state.flushing = None
            if state.batch:  # what arrived during the steps
                self._schedule_flush(state)
