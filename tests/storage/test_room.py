"""The chat pace primitives against the real MongoDB-wire server, from two clients at once (as two
processes would be): one slow-mode turn per gap, and every send counted in the sliding window."""

import asyncio
from datetime import timedelta

import pytest

from storage.accounts import now
from storage.mongo import open_client
from storage.room import Room


@pytest.fixture
def second_room(services, io_loop):
    """A Room over a second client of the same database: what another process would see."""

    async def connect():
        return open_client(services.settings.mongodb_url.reveal())

    client = io_loop.run_sync(connect)
    yield Room(client[services.settings.mongodb_database])
    io_loop.run_sync(client.close)


@pytest.mark.gen_test(timeout=30)
async def test_one_slow_mode_turn_among_concurrent_senders_of_two_processes(services, second_room):
    rooms = [Room(services.db), second_room]
    taken = await asyncio.gather(*[rooms[i % 2].take_turn("w1", "u1", 30) for i in range(10)])
    assert taken.count(True) == 1
    assert not await rooms[0].take_turn("w1", "u1", 30)
    assert await rooms[1].take_turn("w1", "other-user", 30)
    assert await rooms[0].take_turn("w2", "u1", 30)


@pytest.mark.gen_test(timeout=30)
async def test_every_concurrent_send_is_recorded_and_only_the_newest_are_kept(services, second_room):
    rooms = [Room(services.db), second_room]
    await asyncio.gather(*[rooms[i % 2].recent_sends("w1", "u1", 20, 10) for i in range(7)])
    assert len(await rooms[0].recent_sends("w1", "u1", 20, 10)) == 8  # none lost to a race
    sent = await rooms[1].recent_sends("w1", "u1", 4, 10)
    assert len(sent) == 4 and sent == sorted(sent)
    doc = await services.db.chat_windows.find_one({"_id": "rate:w1:u1"})
    assert doc["at"] == sent  # only the newest are kept, so the record stays small
    assert len(await rooms[1].recent_sends("w1", "u2", 4, 10)) == 1


@pytest.mark.gen_test(timeout=30)
async def test_sends_arriving_out_of_order_are_kept_by_time(services):
    """Another process's later send can be written before this one: the window keeps the newest by
    time, oldest first, whatever order the writes arrive in."""
    room = Room(services.db)
    later = [now() + timedelta(seconds=s) for s in (30, 10, 20)]  # written first, out of order
    await services.db.chat_windows.insert_one({"_id": "rate:w1:u1", "at": later})
    sent = await room.recent_sends("w1", "u1", 3, 60)
    assert sent == sorted(sent) and len(sent) == 3
    assert [round((t - sent[0]).total_seconds()) for t in sent] == [0, 10, 20]  # the oldest (now) dropped
