"""Group commit of durable history (storage/history.py) against the real MongoDB-wire server:
concurrent appends to one channel share one counter increment and one insert, and still get seqs
1..n in call order, each stored once; a failed group fails only the callers it did not store.
Bulk appends to many personal channels (``append_many``): a new channel's counter is created at its
first seq, existing counters move by one, and a channel another writer touches meanwhile still gets
distinct seqs; lookups by many ids go in ``$in`` groups (storage/mongo.py)."""

from __future__ import annotations

import asyncio

import pytest
from pymongo import monitoring
from pymongo.errors import BulkWriteError

from storage import history, mongo


class Commands(monitoring.CommandListener):
    """The commands the client sent, by name and collection."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append((event.command_name, str(event.command.get(event.command_name))))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        return None

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        return None

    def count(self, name: str, collection: str) -> int:
        return self.sent.count((name, collection))


@pytest.fixture
def commands() -> Commands:
    return Commands()


@pytest.fixture
def db(io_loop, mongo_server, test_id, commands):
    async def open_db():
        client = mongo.open_client(mongo_server.url, event_listeners=[commands])
        await history.create_indexes(client[test_id])
        return client

    client = io_loop.run_sync(open_db)
    yield client[test_id]
    io_loop.run_sync(client.close)


N = 300


@pytest.mark.gen_test(timeout=120)
async def test_concurrent_appends_share_writes_and_keep_call_order(db, commands):
    log = history.History(db, size=1000)
    entries = await asyncio.gather(*(log.append("room:w1", "chat", {"n": i}) for i in range(N)))

    assert [e.seq for e in entries] == list(range(1, N + 1))  # the i-th call got seq i
    assert [e.data["n"] for e in entries] == list(range(N))
    stored = await log.read("room:w1", 0, N + 10)
    assert [(e.seq, e.data["n"]) for e in stored] == [(i + 1, i) for i in range(N)]  # once each, no gap
    assert await log.last_seq("room:w1") == N
    # Grouped: far fewer inserts and counter increments than messages (at most MAX_GROUP a group).
    inserts = commands.count("insert", "history")
    increments = commands.count("findAndModify", "channel_seq")
    assert 0 < inserts < N / 10
    assert 0 < increments < N / 10


@pytest.mark.gen_test(timeout=120)
async def test_a_failed_group_fails_only_the_callers_it_did_not_store(db):
    log = history.History(db, size=1000)
    # Seq 3 is taken already (as if by a writer that bypassed the counter): the group's insert of
    # 3 fails; 1 and 2 are stored before it, and 3, 4 and 5 are not (the insert is ordered).
    await db.history.insert_one({"c": "room:w2", "s": 3, "t": "chat", "d": {"n": "other"}, "ts": 0})

    outcomes = await asyncio.gather(
        *(log.append("room:w2", "chat", {"n": i}) for i in range(5)), return_exceptions=True
    )

    assert [o.seq for o in outcomes[:2]] == [1, 2]
    assert all(isinstance(o, BulkWriteError) for o in outcomes[2:])
    stored = await log.read("room:w2")
    assert [(e.seq, e.data["n"]) for e in stored] == [(1, 0), (2, 1), (3, "other")]
    # The next append carries on after the seqs given up (holes, never duplicates).
    assert (await log.append("room:w2", "chat", {"n": 5})).seq == 6


N = 3 * mongo.IN_GROUP + 7  # more than one group, the last one short


def channels(n: int = N) -> list[str]:
    return [f"user:u{i}" for i in range(n)]


@pytest.mark.gen_test(timeout=60)
async def test_first_messages_of_new_channels_are_seq_1_without_increments(db, commands):
    h = history.History(db, size=100)
    entries = await h.append_many([(c, "notification", {"i": i}) for i, c in enumerate(channels())])
    assert [(e.channel, e.seq) for e in entries] == [(c, 1) for c in channels()]
    assert commands.count("update", "channel_seq") == 0  # created at 1, not created then incremented
    assert commands.count("find", "channel_seq") == 4  # the existing counters, in $in groups
    recovered, reset = await h.since("user:u5", 0)
    assert not reset and [(e.seq, e.data) for e in recovered] == [(1, {"i": 5})]
    assert await h.last_seq("user:u5") == 1


@pytest.mark.gen_test(timeout=60)
async def test_existing_channels_get_their_next_seq_and_new_ones_seq_1(db):
    h = history.History(db, size=100)
    await h.append_many([(c, "n", {"round": 1}) for c in channels(N // 2)])
    await h.append("user:u0", "n", {"round": "single"})
    entries = await h.append_many([(c, "n", {"round": 2}) for c in channels()])
    seqs = {e.channel: e.seq for e in entries}
    assert seqs["user:u0"] == 3
    assert {seqs[c] for c in channels(N // 2)[1:]} == {2}
    assert {seqs[c] for c in channels()[N // 2 :]} == {1}
    recovered, reset = await h.since("user:u0", 0)
    assert not reset and [e.data["round"] for e in recovered] == [1, "single", 2]


@pytest.mark.gen_test(timeout=60)
async def test_a_channel_written_during_a_bulk_append_keeps_distinct_ordered_seqs(db):
    """Single appends racing with bulk appends on the same channels: every message stored once,
    each channel's seqs strictly increasing in history and never reused."""
    h = history.History(db, size=1000)
    first = await h.append_many([(c, "n", {}) for c in channels(20)])  # existing counters for half
    targets = channels(40)

    async def singles() -> list[history.Entry]:
        return [await h.append(c, "single", {}) for c in targets[::3]]

    results = await asyncio.gather(
        h.append_many([(c, "bulk", {"k": 1}) for c in targets]),
        singles(),
        h.append_many([(c, "bulk", {"k": 2}) for c in targets]),
    )
    written = first + [e for entries in results for e in entries]
    assert len(written) == 20 + 2 * len(targets) + len(targets[::3])
    for c in targets:
        stored = await h.read(c)
        seqs = [e.seq for e in stored]
        assert seqs == sorted(set(seqs))  # no seq twice
        assert sorted(e.seq for e in written if e.channel == c) == seqs  # each caller got its own
        assert len(stored) == 2 + (c in channels(20)) + (c in targets[::3])


@pytest.mark.gen_test(timeout=60)
async def test_find_in_returns_every_match_across_groups(db, commands):
    await db.things.insert_many([{"_id": i, "kind": "a" if i % 2 else "b"} for i in range(N)])
    wanted = list(range(0, N, 1)) + [10_000]  # one that does not exist
    found = await mongo.find_in(db.things, "_id", wanted, {"kind": "a"}, {"_id": 1})
    assert sorted(d["_id"] for d in found) == list(range(1, N, 2))
    assert commands.count("find", "things") == 4
    assert await mongo.find_in(db.things, "_id", []) == []
