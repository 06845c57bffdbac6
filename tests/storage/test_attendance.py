"""Attendance written behind (storage/attendance.py) against the real MongoDB-wire server: joins and
leaves of an interval are written together, and closing writes everything left (a graceful stop
loses nothing)."""

import asyncio

import pytest

from storage.attendance import Attendance


async def stored(services, webinar_id="w1"):
    return await services.db.attendance.find({"webinar_id": webinar_id}).sort("joined_at", 1).to_list(None)


@pytest.mark.gen_test(timeout=60)
async def test_joins_and_leaves_of_an_interval_are_written_together(services):
    attendance = Attendance(services.db, flush_interval=3600)  # written only when asked
    try:
        await asyncio.gather(*(attendance.join("w1", f"u{i}", f"User {i}", True) for i in range(30)))
        await asyncio.gather(*(attendance.leave("w1", f"u{i}") for i in range(10)))
        assert await stored(services) == []  # behind: nothing written yet
        await attendance.flush()
        docs = await stored(services)
        assert len(docs) == 30
        assert sorted(d["user_id"] for d in docs if d["left_at"] is not None) == sorted(
            f"u{i}" for i in range(10)
        )
        await attendance.leave("w1", "u20")  # a session already written is closed by the next write
        await attendance.flush()
        closed = {d["user_id"] for d in await stored(services) if d["left_at"] is not None}
        assert "u20" in closed and len(closed) == 11
    finally:
        await attendance.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_user_in_two_tabs_keeps_one_open_session_after_one_leaves(services):
    attendance = Attendance(services.db, flush_interval=3600)
    try:
        await attendance.join("w1", "u1", "U", True)
        await attendance.flush()
        await attendance.join("w1", "u1", "U", True)
        await attendance.leave("w1", "u1")  # the oldest (written) one closes
        await attendance.flush()
        first, second = await stored(services)
        assert first["left_at"] is not None and second["left_at"] is None
    finally:
        await attendance.close()


@pytest.mark.gen_test(timeout=60)
async def test_close_writes_what_is_pending_and_later_records_at_once(services):
    attendance = Attendance(services.db, flush_interval=3600)
    await attendance.join("w1", "u1", "U", False)
    await attendance.join("w1", "u2", "U", False)
    await attendance.leave("w1", "u2")
    await attendance.close()  # the server's shutdown, after its connections left
    docs = {d["user_id"]: d for d in await stored(services)}
    assert set(docs) == {"u1", "u2"} and docs["u2"]["left_at"] is not None
    await attendance.leave("w1", "u1")  # a cleanup finishing after close
    assert (await services.db.attendance.find_one({"user_id": "u1"}))["left_at"] is not None


@pytest.mark.gen_test(timeout=60)
async def test_periodic_writes_and_reports_see_pending_sessions(services):
    attendance = Attendance(services.db, flush_interval=0.05)
    other_process = Attendance(services.db, flush_interval=3600)
    try:
        await attendance.join("w1", "u1", "U", True)
        # the periodic write, without anyone asking (a database state has no event to await; the
        # test's timeout bounds the wait)
        while not await stored(services):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await other_process.join("w1", "u2", "U", True)
        assert [s["user_id"] for s in await other_process.sessions("w1")] == ["u1", "u2"]
        assert await other_process.attendee_count("w1") == 2
        await other_process.leave("w1", "u1")  # not its own session (before a restart): at once
        assert (await services.db.attendance.find_one({"user_id": "u1"}))["left_at"] is not None
    finally:
        await attendance.close()
        await other_process.close()
