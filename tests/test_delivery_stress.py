"""The delivery promise under concurrency, across two real processes (real Redis and SecantusDB):
while a publisher keeps several durable publishes in flight on a room, clients subscribe and
unsubscribe over and over, with ``since`` and without, on the publishing process and on the other,
over WebSocket and over SSE (``Last-Event-ID``). Every cycle must receive every seq after its position
exactly once, in order, with no gap: the switch from replay to live loses nothing.

Each room has three cycling clients on each process over each transport, so a subscribe is often the
channel's first local subscriber there (the hub subscribes upstream and takes its starting position:
the moment where messages allocated but not yet published used to fall through the gap), and
otherwise joins a channel that is delivering (a replay that meets live messages). 2,000 cycles in all.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from config import load_settings
from realtime.auth.tokens import TokenService
from tests.servers import AppProcess, app_processes
from tests.sseclient import EventStream, ticket_for
from tests.wsclient import WsClient

API_KEY = "stress-key-0123456789abcdef0123456789abcdef"
JWT_KEYS = "k1:stress-signing-key-0123456789abcdef0123456789"
ROOMS = 3  # one publisher each
PER_PROCESS = 3  # cycling clients per room on each process
IN_FLIGHT = 3  # concurrent publishes per room (like the publish API and chat under load)
WS_CYCLES = 1500  # subscribe cycles over WebSocket, in total
SSE_CYCLES = 500  # stream cycles over SSE, in total
LIVE_PAST = 1  # a cycle ends once it has this many messages past its position
READ_TIMEOUT = 20.0  # seconds without the next message: the cycle is stuck (a loss at the tail)


@pytest.fixture
def cluster(mongo_server, test_id, tmp_path):
    with app_processes(
        mongo_server.url,
        test_id,
        tmp_path,
        API_KEYS=f"stress:{API_KEY}",
        JWT_KEYS=JWT_KEYS,
        # the stress opens hundreds of SSE streams and publishes as fast as it can: not what the
        # abuse limits (tests/handlers/test_rate_limits.py) are about
        TICKET_RATE="0",
        PUBLISH_RATE="0",
    ) as (_, apps):
        yield apps


@pytest.fixture
def tokens(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    return TokenService(load_settings({"JWT_KEYS": JWT_KEYS}, toml_path=empty))


class Publisher:
    """``IN_FLIGHT`` concurrent durable publishes on ``room`` through the HTTP publish API of
    ``app``, until stopped."""

    def __init__(self, app: AppProcess, room: str) -> None:
        self.app = app
        self.room = room
        self.http = AsyncHTTPClient(force_instance=True, max_clients=IN_FLIGHT)
        self.stopped = asyncio.Event()

    async def run(self) -> None:
        await asyncio.gather(*(self._loop() for _ in range(IN_FLIGHT)))
        self.http.close()

    async def _loop(self) -> None:
        while not self.stopped.is_set():
            resp = await self.http.fetch(
                f"{self.app.url}/api/channels/{self.room}/messages",
                method="POST",
                body=json.dumps({"type": "tick", "data": {}}),
                headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
            )
            assert resp.code == 202


class Positions:
    """What one cycling client has seen of its room: the next cycle resumes from it (``since``)."""

    def __init__(self) -> None:
        self.last = 0
        self.cycles = 0

    def check(self, what: str, start: int, seqs: list[int]) -> None:
        """``seqs`` (in arrival order) must be exactly ``start+1, start+2, ...``."""
        expected = list(range(start + 1, start + 1 + len(seqs)))
        if seqs != expected:
            raise AssertionError(f"{what}: after {start} got {seqs[:20]}, expected {expected[:20]}")
        self.last = max(self.last, seqs[-1] if seqs else start)
        self.cycles += 1


def resume_point(pos: Positions, cycle: int) -> int | None:
    """Every other cycle resumes a little behind what was seen (a replay, then live); the rest
    subscribe without ``since``."""
    if cycle % 2 == 0 or pos.last == 0:
        return None
    return max(0, pos.last - cycle % 5)


async def ws_cycles(app: AppProcess, token: str, room: str, budget: Budget) -> Positions:
    client = await WsClient.connect(app.ws_url, token)
    pos = Positions()
    try:
        for cycle in budget:
            since = resume_point(pos, cycle)
            msg: dict[str, Any] = {"type": "subscribe", "channel": room}
            if since is not None:
                msg["since"] = since
            await client.send(msg)
            position: int | None = None
            seqs: list[int] = []
            while position is None or (seqs[-1] if seqs else since or 0) < position + LIVE_PAST:
                m = await client.recv(READ_TIMEOUT)
                if m.get("channel") != room:
                    continue
                if m["type"] == "subscribed":
                    assert not m.get("reset"), m
                    position = m["seq"]
                elif "seq" in m:
                    seqs.append(m["seq"])
                elif m["type"] == "error":
                    raise AssertionError(m)
            assert position is not None
            start = since if since is not None else position
            pos.check(f"ws {app.url} cycle {cycle} since={since} subscribed={position}", start, seqs)
            await client.send({"type": "unsubscribe", "channel": room})
            while (await client.recv(READ_TIMEOUT)).get("type") != "unsubscribed":
                pass  # what was already on its way before the unsubscribe
            client.inbox.clear()
    finally:
        client.close()
    return pos


async def open_stream(
    http: AsyncHTTPClient, app: AppProcess, token: str, room: str, last_id: str | None
) -> EventStream:
    """A stream opened with a fresh ticket. A ticket that expired before the process got to it (a
    starved process on a loaded machine: it lasts 60 s) is not what this test checks: a new one is
    asked for, three times at most; any other refusal is returned for the caller to fail on."""
    for _ in range(3):
        ticket = await ticket_for(http, app.url, token)
        stream = await EventStream().open(app.url, ticket, [room], last_event_id=last_id)
        if stream.status == 401 and "expired" in (stream.error or {}).get("message", ""):
            await stream.close()
            continue
        return stream
    return stream


async def sse_cycles(app: AppProcess, token: str, room: str, budget: Budget) -> Positions:
    http = AsyncHTTPClient(force_instance=True)
    pos = Positions()
    try:
        for cycle in budget:
            since = resume_point(pos, cycle)
            last_id = f"{room}@{since}" if since is not None else None
            stream = await open_stream(http, app, token, room, last_id)
            try:
                assert stream.status == 200, stream.error
                subscribed = await stream.event("subscribed", READ_TIMEOUT)
                position = subscribed["seq"]

                def far_enough(stream: EventStream = stream, position: int = position) -> bool:
                    seqs = durable(stream)
                    return bool(seqs) and seqs[-1] >= position + LIVE_PAST

                await stream._until(far_enough, READ_TIMEOUT)
                seqs = durable(stream)
                start = since if since is not None else position
                pos.check(f"sse {app.url} cycle {cycle} since={since} subscribed={position}", start, seqs)
                ids = [e["id"] for e in stream.events if "id" in e]
                assert ids[-1] == f"{room}@{seqs[-1]}"  # the id a reconnect resumes from
            finally:
                await stream.close()
    finally:
        http.close()
    return pos


def durable(stream: EventStream) -> list[int]:
    """The seqs of the durable messages ``stream`` has received, in arrival order."""
    return [d["seq"] for d in stream.data() if "seq" in d]


class Budget:
    """Cycle numbers shared by every client of a test, until ``total`` cycles have started."""

    def __init__(self, total: int) -> None:
        self.counter = itertools.count()
        self.total = total

    def __iter__(self) -> Budget:
        return self

    def __next__(self) -> int:
        n = next(self.counter)
        if n >= self.total:
            raise StopIteration
        return n


async def run_with_publishers(cluster: list[AppProcess], clients: list[Any]) -> list[Positions]:
    """Run ``clients`` while every room has its publisher; the first failure stops everything."""
    a, _ = cluster
    publishers = [Publisher(a, f"room:stress{r}") for r in range(ROOMS)]
    running = [asyncio.ensure_future(p.run()) for p in publishers]
    tasks = [asyncio.ensure_future(c) for c in clients]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # the first failure, with its message
        return [t.result() for t in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for p in publishers:
            p.stopped.set()
        await asyncio.gather(*running, return_exceptions=True)


@pytest.mark.gen_test(timeout=600)
async def test_subscribe_cycles_against_a_concurrent_publisher_see_every_seq_once(cluster, tokens):
    """WebSocket and SSE cycles at once, on both processes, against the same publishers."""
    ws, sse = Budget(WS_CYCLES), Budget(SSE_CYCLES)
    clients = []
    for r in range(ROOMS):
        room = f"room:stress{r}"
        for i, app in enumerate(cluster * PER_PROCESS):  # the publishing process (a) and the other (b)
            token = tokens.issue(f"u{r}-{i}", role="attendee", webinar=f"stress{r}", name=f"u{r}-{i}")
            clients.append(ws_cycles(app, token, room, ws))
            clients.append(sse_cycles(app, token, room, sse))
    done = await run_with_publishers(cluster, clients)
    assert sum(p.cycles for p in done) == WS_CYCLES + SSE_CYCLES
