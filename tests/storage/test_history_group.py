"""Group commit of durable history (storage/history.py) against the real MongoDB-wire server:
concurrent appends to one channel share one counter increment and one insert, and still get seqs
1..n in call order, each stored once; a failed group fails only the callers it did not store."""

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
