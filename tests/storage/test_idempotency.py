"""The idempotency store's rules against a real database: a failed send frees its key, a done send
answers every retry with its result, and an expired claim is a new send."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.idempotency import Idempotency


@pytest.mark.gen_test
async def test_a_key_runs_its_send_once_and_a_failed_send_frees_it(services):
    store = Idempotency(services.db, 60)
    calls: list[str] = []

    async def failing() -> dict:
        calls.append("failing")
        raise RuntimeError("refused")

    async def sending() -> dict:
        calls.append("sending")
        return {"seq": len(calls)}

    with pytest.raises(RuntimeError):
        await store.once("chat:w1:u1", "k", failing)
    assert await store.once("chat:w1:u1", "k", sending) == {"seq": 2}
    assert await store.once("chat:w1:u1", "k", sending) == {"seq": 2}
    assert await store.once("chat:w1:u2", "k", sending) == {"seq": 3}  # another sender's key
    assert await store.once("chat:w1:u1", None, sending) == {"seq": 4}  # no key: always sent
    assert calls == ["failing", "sending", "sending", "sending"]

    await services.db.idempotency.update_one(
        {"s": "chat:w1:u1", "k": "k"}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    assert await store.once("chat:w1:u1", "k", sending) == {"seq": 5}  # the window has passed
