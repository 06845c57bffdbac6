"""The hub's delivery contract, run against every broker: memory, a real Redis, and a real three-master
Redis Cluster (sharded pub/sub)."""

from __future__ import annotations

import asyncio
import time

import pytest

from realtime.engine.hub import Hub
from realtime.engine.publication import Publication
from server import make_broker
from storage.history import TRIM_EVERY, History
from storage.idempotency import Idempotency
from storage.mongo import open_client
from tests.realtime.engine.turns import ticking, turns_between
from tests.redis_topologies import RedisClusterTopology


class Recorder:
    """A subscriber at the hub's seam: records what it is handed."""

    def __init__(self, user_id: str = "u1") -> None:
        self.user_id = user_id
        self.got: list[Publication] = []
        self.kicked: list[tuple[str, int]] = []
        self.arrived = asyncio.Event()

    def deliver(self, pub: Publication) -> None:
        self.got.append(pub)
        self.arrived.set()

    def push(self, frame: bytes, droppable: bool, pubs: list[Publication]) -> None:
        assert frame == b"".join(p.ws_frame for p in pubs)
        assert droppable == all(p.seq is None for p in pubs)
        for pub in pubs:
            self.deliver(pub)

    def kick(self, channel: str, code: int, reason: str) -> None:
        self.kicked.append((channel, code))
        self.arrived.set()

    async def wait_for(self, n: int, timeout: float = 10) -> list[Publication]:
        async def until() -> None:
            while len(self.got) < n:
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(until(), timeout)
        return self.got

    def seqs(self) -> list[int | None]:
        return [p.seq for p in self.got]


@pytest.fixture(scope="session")
def redis_cluster_session():
    topology = RedisClusterTopology()
    try:
        topology.start()
        yield topology
    finally:
        topology.close()


@pytest.fixture(params=["memory", "redis", "cluster"])
def backend(request):
    return request.param


@pytest.fixture
def hubs(io_loop, request, make_settings, backend):
    """A factory of hubs sharing one database (and one Redis or Redis Cluster as the backend says)."""
    cluster = (
        {"REDIS_URL": request.getfixturevalue("redis_cluster_session").url} if backend == "cluster" else {}
    )
    settings = make_settings(redis=backend == "redis", HISTORY_SIZE="10", **cluster)
    client = open_client(settings.mongodb_url.reveal())
    made: list[Hub] = []

    async def make(repair_delays=(0.05, 0.1)) -> Hub:
        db = client[settings.mongodb_database]
        hub = Hub(
            make_broker(settings),
            History(db, settings.history_size),
            Idempotency(db, settings.idempotency_window),
            repair_delays=repair_delays,
        )
        await hub.start()
        made.append(hub)
        return hub

    yield make

    async def close() -> None:
        for hub in made:
            await hub.close()
            await hub.broker.close()
        await client.close()

    io_loop.run_sync(close)


def noop(position: int, reset: bool) -> None:
    return None


@pytest.mark.gen_test
async def test_durable_messages_arrive_in_order_with_seq(hubs):
    hub = await hubs()
    sub = Recorder()
    await hub.subscribe(sub, "room:w1", None, noop)
    for i in range(5):
        assert await hub.publish("room:w1", "chat.message", {"i": i}) == i + 1
    assert await hub.publish("room:w1", "typing", {}, durable=False) is None
    got = await sub.wait_for(6)
    assert [p.seq for p in got] == [1, 2, 3, 4, 5, None]
    assert b'"data":{"i":4}' in got[4].json


@pytest.mark.gen_test
async def test_since_recovers_exactly_the_missed_messages_then_live(hubs):
    hub = await hubs()
    for i in range(3):
        await hub.publish("user:u1", "notification", {"i": i})
    sub = Recorder()
    ready: list[tuple[int, bool]] = []
    await hub.subscribe(sub, "user:u1", 1, lambda pos, reset: ready.append((pos, reset)))
    assert ready == [(3, False)]
    assert sub.seqs() == [2, 3]
    await hub.publish("user:u1", "notification", {"i": 3})
    await sub.wait_for(3)
    assert sub.seqs() == [2, 3, 4]


# The fewest writes that trim (history keeps 10, trims every TRIM_EVERY), one channel at a time
# each, with a timeout sized for them on a busy machine rather than the 5 s default.
@pytest.mark.gen_test(timeout=60)
async def test_reset_when_history_cannot_fill_the_gap(hubs):
    hub = await hubs()
    await hub.history.append_many([(f"user:x{i}", "n", {}) for i in range(3)])

    async def fill(channel: str) -> None:
        for i in range(TRIM_EVERY):
            await hub.history.append(channel, "chat.message", {"i": i})

    await asyncio.gather(fill("user:big"), fill("room:big"))
    assert len(await hub.history.read("user:big")) < TRIM_EVERY  # trimmed
    assert len(await hub.history.read("room:big")) == TRIM_EVERY  # a room is its webinar's timeline
    for channel in ("user:big", "room:big"):
        sub = Recorder()
        ready: list[tuple[int, bool]] = []
        await hub.subscribe(sub, channel, 5, lambda pos, reset, ready=ready: ready.append((pos, reset)))
        assert ready == [(TRIM_EVERY, True)]  # too far behind to replay (more than HISTORY_SIZE missed)
        assert sub.got == []
        await hub.unsubscribe(sub, channel)


@pytest.mark.gen_test
async def test_out_of_order_arrival_is_reordered_and_holes_are_skipped(hubs):
    hub = await hubs()
    sub = Recorder()
    await hub.subscribe(sub, "room:o", None, noop)
    first = await hub.history.append("room:o", "chat.message", {"n": 1})
    second = await hub.history.append("room:o", "chat.message", {"n": 2})
    # The second arrives first (its publisher on another process was quicker).
    await hub.broker.publish("room:o", Publication.from_entry(second).to_wire())
    await hub.broker.publish("room:o", Publication.from_entry(first).to_wire())
    await sub.wait_for(2)
    assert sub.seqs() == [1, 2]
    # A publisher that took seq 3 and crashed before writing it leaves a hole; 4 is still delivered.
    await hub.history._counters.update_one({"_id": "room:o"}, {"$inc": {"seq": 1}})
    await hub.publish("room:o", "chat.message", {"n": 4})
    await sub.wait_for(3)
    assert sub.seqs() == [1, 2, 4]


@pytest.mark.gen_test
async def test_a_gap_is_repaired_from_history(hubs):
    hub = await hubs()
    sub = Recorder()
    await hub.subscribe(sub, "room:g", None, noop)
    await hub.history.append("room:g", "chat.message", {"n": 1})  # stored, never published
    await hub.publish("room:g", "chat.message", {"n": 2})
    await sub.wait_for(2)
    assert sub.seqs() == [1, 2]


@pytest.mark.gen_test
async def test_a_first_subscriber_starts_where_history_is_complete_not_at_the_counter(hubs):
    hub = await hubs()
    await hub.publish("room:f", "chat.message", {"n": 1})
    # A publisher has taken seq 2 and is still writing it when this process's first subscriber comes.
    in_flight = await hub.history._next("room:f")
    sub = Recorder()
    ready: list[tuple[int, bool]] = []
    await hub.subscribe(sub, "room:f", None, lambda pos, reset: ready.append((pos, reset)))
    assert ready == [(1, False)]
    now = int(time.time() * 1000)
    doc = {"c": "room:f", "s": in_flight, "t": "chat.message", "d": {}, "ts": now}
    await hub.history._messages.insert_one(doc)
    entry = (await hub.history.read("room:f", after=1))[0]
    await hub.broker.publish("room:f", Publication.from_entry(entry).to_wire())
    await hub.publish("room:f", "chat.message", {"n": 3})
    await sub.wait_for(2)
    assert sub.seqs() == [2, 3]


@pytest.mark.gen_test
async def test_messages_stored_past_a_crashed_publishers_hole_are_still_delivered(hubs):
    hub = await hubs()
    sub = Recorder()
    await hub.subscribe(sub, "room:h", None, noop)
    await hub.history._counters.update_one({"_id": "room:h"}, {"$inc": {"seq": 1}}, upsert=True)  # 1: lost
    await hub.history.append("room:h", "chat.message", {"n": 2})  # stored, its publish lost
    await hub.publish("room:h", "chat.message", {"n": 3})
    await sub.wait_for(2)
    assert sub.seqs() == [2, 3]


@pytest.mark.gen_test
async def test_an_old_hole_does_not_hold_a_new_subscriber_back(hubs):
    hub = await hubs()
    await hub.history._counters.insert_one({"_id": "room:old", "seq": 2})  # 1 was never written
    await hub.history._messages.insert_one({"c": "room:old", "s": 2, "t": "chat.message", "d": {}, "ts": 0})
    sub = Recorder()
    ready: list[tuple[int, bool]] = []
    await hub.subscribe(sub, "room:old", None, lambda pos, reset: ready.append((pos, reset)))
    assert ready == [(2, False)]  # seq 2 was written long ago: 1 is a crashed publisher's hole
    await hub.publish("room:old", "chat.message", {"n": 3})
    await sub.wait_for(1)
    assert sub.seqs() == [3]


@pytest.mark.gen_test
async def test_upstream_subscription_follows_first_and_last_local_subscriber(hubs, backend):
    hub = await hubs()
    a, b = Recorder("a"), Recorder("b")
    await hub.subscribe(a, "room:s", None, noop)
    await hub.subscribe(b, "room:s", None, noop)
    assert hub.subscriber_count("room:s") == 2
    await hub.unsubscribe(a, "room:s")
    assert hub.channel_count() == 1
    await hub.unsubscribe(b, "room:s")
    assert hub.channel_count() == 0
    if backend == "memory":
        assert "room:s" not in hub.broker._channels
    elif backend == "cluster":
        numsub = await hub.broker.redis.pubsub_shardnumsub(hub.broker._key("room:s"))
        assert numsub[0][1] == 0
    else:
        numsub = await hub.broker.redis.pubsub_numsub(hub.broker._key("room:s"))
        assert numsub[0][1] == 0


@pytest.mark.parametrize("backend", ["redis", "cluster"])  # the in-process broker serves one process
@pytest.mark.gen_test
async def test_cross_process_delivery_and_kick(hubs, backend):
    one, two = await hubs(), await hubs()
    sub = Recorder("victim")
    await two.subscribe(sub, "room:x", None, noop)
    await one.publish("room:x", "announcement", {"text": "hi"})
    await sub.wait_for(1)
    assert sub.seqs() == [1]
    await one.kick("room:x", "victim", 4003, "banned")

    async def kicked() -> None:
        while not sub.kicked:
            sub.arrived.clear()
            await sub.arrived.wait()

    await asyncio.wait_for(kicked(), 10)
    assert sub.kicked == [("room:x", 4003)]


@pytest.mark.gen_test
async def test_publish_many_assigns_per_channel_seqs(hubs):
    hub = await hubs()
    subs = [Recorder(f"u{i}") for i in range(3)]
    for i, sub in enumerate(subs):
        await hub.subscribe(sub, f"user:u{i}", None, noop)
    await hub.publish("user:u1", "notification", {"first": True})
    seqs = await hub.publish_many([(f"user:u{i}", "notification", {"i": i}) for i in range(3)])
    assert seqs == [1, 2, 1]
    for sub in subs:
        await sub.wait_for(1)
    assert subs[1].seqs() == [1, 2]


@pytest.mark.gen_test
async def test_concurrent_first_publishes_on_a_new_channel_get_distinct_seqs(hubs):
    hub = await hubs()
    seqs = await asyncio.gather(*(hub.publish("room:new", "chat.message", {"i": i}) for i in range(20)))
    assert sorted(seqs) == list(range(1, 21))
    entries = await hub.history.read("room:new")
    assert [e.seq for e in entries] == list(range(1, 21))


class Counter:
    """A cheap subscriber at the hub's seam that records how publications were grouped."""

    def __init__(self) -> None:
        self.user_id = "c"
        self.groups: list[list[int | None]] = []

    def deliver(self, pub: Publication) -> None:
        self.groups.append([pub.seq])

    def push(self, frame: bytes, droppable: bool, pubs: list[Publication]) -> None:
        self.groups.append([p.seq for p in pubs])
        time.sleep(0.0001)  # a socket write's cost: 200 of these make a 20 ms, "busy" fan-out

    def kick(self, channel: str, code: int, reason: str) -> None:
        return None


@pytest.mark.parametrize("backend", ["memory"])
@pytest.mark.gen_test(timeout=30)
async def test_a_busy_channel_batches_what_arrives_during_its_fan_out(hubs, backend):
    hub = await hubs()
    subs = [Counter() for _ in range(200)]
    for sub in subs:
        await hub.subscribe(sub, "room:busy", None, noop)
    first = await hub.publish("room:busy", "chat.message", {"n": 0})
    # Stored first, so that they arrive one loop turn apart while the channel is busy, however
    # long the database takes on this machine.
    entries = [await hub.history.append("room:busy", "chat.message", {"n": n}) for n in range(1, 6)]
    while not subs[-1].groups:  # noqa: ASYNC110 - the seam has no event; this is the first fan-out
        await asyncio.sleep(0)
    for entry in entries:
        await hub.broker.publish("room:busy", Publication.from_entry(entry).to_wire())
        await asyncio.sleep(0)
    seqs = [first] + [e.seq for e in entries]

    async def all_delivered() -> None:
        # every subscriber: a fan-out runs in steps, in no particular order of subscribers
        while any(sum(len(g) for g in sub.groups) < 6 for sub in subs):  # noqa: ASYNC110 - as above
            await asyncio.sleep(0.01)

    await asyncio.wait_for(all_delivered(), 10)
    for sub in subs:
        assert [s for group in sub.groups for s in group] == seqs  # in order, each once
    assert any(len(group) > 1 for group in subs[0].groups)  # the later ones shared writes


class Stamped(Counter):
    """A slow subscriber that also writes each push into a shared timeline."""

    def __init__(self, timeline: list[str]) -> None:
        super().__init__()
        self.timeline = timeline

    def push(self, frame: bytes, droppable: bool, pubs: list[Publication]) -> None:
        self.timeline.append("push")
        super().push(frame, droppable, pubs)


async def slow_room(hub: Hub, channel: str, timeline: list[str], n: int = 200) -> list[Stamped]:
    """``n`` slow subscribers of ``channel``: a fan-out to them takes n x 0.1 ms, in several steps."""
    subs = [Stamped(timeline) for _ in range(n)]
    for sub in subs:
        await hub.subscribe(sub, channel, None, noop)
    return subs


@pytest.mark.parametrize("backend", ["memory"])
@pytest.mark.gen_test(timeout=30)
async def test_a_large_fan_out_lets_the_loop_run_between_its_steps(hubs, backend):
    # 200 writes of 0.1 ms each are a 20 ms fan-out: the rest of the process must get turns in it
    hub = await hubs()
    timeline: list[str] = []
    subs = await slow_room(hub, "room:big", timeline)
    done = asyncio.Event()
    other = asyncio.create_task(ticking(timeline, done))
    await hub.publish("room:big", "chat.message", {"n": 1})
    while not all(sub.groups for sub in subs):  # noqa: ASYNC110 - the seam has no event
        await asyncio.sleep(0.001)
    done.set()
    await other
    assert timeline.count("push") == 200
    between = turns_between(timeline, "push")
    assert between >= 2, f"the fan-out held the loop for all 200 writes ({between} turns between)"


@pytest.mark.parametrize("backend", ["memory"])
@pytest.mark.gen_test(timeout=30)
async def test_joining_or_leaving_during_a_fan_out_in_steps_loses_and_repeats_nothing(hubs, backend):
    hub = await hubs()
    timeline: list[str] = []
    subs = await slow_room(hub, "room:steps", timeline)
    first = await hub.publish("room:steps", "chat.message", {"n": 1})
    while not timeline:  # noqa: ASYNC110 - the fan-out has begun
        await asyncio.sleep(0)
    waiting = [sub for sub in subs if not sub.groups]
    assert waiting  # ... and not ended: it is in steps
    leaver = waiting[-1]
    await hub.unsubscribe(leaver, "room:steps")
    joiner, fresh = Recorder("late"), Recorder("fresh")
    await asyncio.gather(
        hub.subscribe(joiner, "room:steps", 0, noop),  # from the start: message 1 from history
        hub.subscribe(fresh, "room:steps", None, noop),  # from now on
    )
    second = await hub.publish("room:steps", "chat.message", {"n": 2})
    await joiner.wait_for(2)
    await fresh.wait_for(1)
    stayed = [sub for sub in subs if sub is not leaver]
    while any(sum(len(g) for g in sub.groups) < 2 for sub in stayed):  # noqa: ASYNC110 - no event
        await asyncio.sleep(0.01)
    assert joiner.seqs() == [first, second]
    assert fresh.seqs() == [second]
    assert leaver.groups == []  # it left before the fan-out reached it
    for sub in stayed:
        assert [s for group in sub.groups for s in group] == [first, second]


class FailsOnce(Counter):
    """A slow subscriber; the 101st push among all of them raises once (a bug in a transport),
    which falls in the fan-out's second step or later: its first holds at most ~64 slow writes."""

    def __init__(self, shared: dict[str, int]) -> None:
        super().__init__()
        self.shared = shared

    def push(self, frame: bytes, droppable: bool, pubs: list[Publication]) -> None:
        self.shared["pushes"] += 1
        if self.shared["pushes"] == 101:
            raise RuntimeError("a transport's bug")
        super().push(frame, droppable, pubs)


@pytest.mark.parametrize("backend", ["memory"])
@pytest.mark.gen_test(timeout=30)
async def test_a_subscriber_failing_in_a_later_step_does_not_wedge_the_channel(hubs, backend):
    hub = await hubs()
    shared = {"pushes": 0}
    subs = [FailsOnce(shared) for _ in range(200)]
    for sub in subs:
        await hub.subscribe(sub, "room:bug", None, noop)
    await hub.publish("room:bug", "chat.message", {"n": 1})
    while shared["pushes"] < 101:  # noqa: ASYNC110 - the seam has no event
        await asyncio.sleep(0.001)
    second = await hub.publish("room:bug", "chat.message", {"n": 2})
    joiner = Recorder("late")
    await hub.subscribe(joiner, "room:bug", None, noop)  # does not wait for ever on the failed one
    third = await hub.publish("room:bug", "chat.message", {"n": 3})
    while third not in joiner.seqs():  # noqa: ASYNC110 - the seam has no event
        await asyncio.sleep(0.01)
    assert joiner.seqs() in ([second, third], [third])  # the second if it joined before it arrived
    while any(third not in [s for g in sub.groups for s in g] for sub in subs):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    for sub in subs:
        seqs = [s for g in sub.groups for s in g]
        assert seqs[-2:] == [second, third]  # the first may have missed those after the failure
