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


@pytest.mark.gen_test(timeout=60)
async def test_joiners_at_once_each_get_their_own_state_from_shared_queries(services, second_room):
    """A join storm's snapshots: every joiner's votes, hand, own questions and upvotes, read at once,
    are each that joiner's own, in two webinars, and a change written before a read is seen by it."""
    room = Room(services.db)
    users = [f"u{i}" for i in range(120)]  # 60 per webinar: past one $in group (storage/mongo.py)
    polls = {w: await room.polls.add(w, "Which?", ["a", "b", "c"], multiple=True) for w in ("w1", "w2")}
    for w, poll in polls.items():
        await room.polls.set_status(w, poll["_id"], "draft", "open")
    asked = {}
    for i, user in enumerate(users):
        w = "w1" if i % 2 else "w2"
        if i % 3 == 0:
            await room.polls.vote(w, polls[w]["_id"], user, [str(i % 3), "2"])
        if i % 4 == 0:
            await room.raise_hand(w, user, user)
        if i % 5 != 4:
            asked[user] = await room.add_question(w, user, user, f"question of {user}", False, True)
    for i, user in enumerate(users):  # each upvotes the question of the next one in their webinar
        w = "w1" if i % 2 else "w2"
        target = users[(i + 2) % len(users)]
        if target in asked:
            await room.upvote(w, asked[target]["_id"], user)

    async def state(w, user):
        return await asyncio.gather(
            room.polls.votes_of(w, user),
            room.hand_raised(w, user),
            room.questions_of(w, user),
            room.upvoted_by(w, user),
            room.polls.list(w),
        )

    fetches = [room.polls._votes, room._hands, room._own_questions, room._upvoted, room.polls._lists]
    before = [b.fetches for b in fetches]
    got = await asyncio.gather(*(state("w1" if i % 2 else "w2", u) for i, u in enumerate(users)))
    assert all(b.fetches - n < len(users) for b, n in zip(fetches, before, strict=True)), "not shared"
    for i, (user, (votes, hand, questions, upvoted, listed)) in enumerate(zip(users, got, strict=True)):
        w = "w1" if i % 2 else "w2"
        assert votes == ({polls[w]["_id"]: [str(i % 3), "2"]} if i % 3 == 0 else {}), user
        assert hand is (i % 4 == 0), user
        assert [q["text"] for q in questions] == ([f"question of {user}"] if user in asked else []), user
        target = users[(i + 2) % len(users)]
        assert upvoted == ([asked[target]["_id"]] if target in asked else []), user
        assert [p["_id"] for p in listed] == [polls[w]["_id"]]
    # a hand lowered by another process just before the read is seen lowered
    assert await room.hand_raised("w2", "u0")
    await second_room.lower_hand("w2", "u0")
    assert not await room.hand_raised("w2", "u0")
