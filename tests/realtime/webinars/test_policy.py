"""The webinar ChannelPolicy: snapshot sharing at the same room seq, and freshness after a change
(the polls' counts, which change without a room message, and ``me`` are read for each joiner)."""

import asyncio

import pytest

from tests.api import Api, join_token


@pytest.mark.gen_test(timeout=30)
async def test_concurrent_joiners_share_one_snapshot_until_the_room_changes(http_client, base_url, services):
    api = Api(http_client, base_url)
    token, guest, w = await api.live_webinar()
    wid = w["id"]
    domain = services.domain
    policy = domain.policy
    claims = services.tokens.verify(guest)
    participant = await domain.webinars.participant(claims, wid)
    calls = []
    real_pinned = policy.room.pinned_question

    async def counting_pinned(webinar_id):
        calls.append(webinar_id)
        return await real_pinned(webinar_id)

    policy.room.pinned_question = counting_pinned  # a counter at the seam, the real storage underneath
    states = await asyncio.gather(*[policy.snapshot(participant) for _ in range(20)])
    assert len(calls) == 1
    assert all(s["open_polls"] == [] and s["recent"] == states[0]["recent"] for s in states)
    # any change publishes a room message, so the next joiner sees it
    code, poll = await api.call(
        "POST", f"/api/webinars/{wid}/polls", {"question": "Q", "options": ["a", "b"]}, token
    )
    await api.call("POST", f"/api/webinars/{wid}/polls/{poll['id']}/open", token=token)
    state = await policy.snapshot(participant)
    assert len(calls) == 2 and [p["id"] for p in state["open_polls"]] == [poll["id"]]
    assert state["counts"]["registrants"] == 1 and state["role"] == "attendee"
    other = await api.register(wid, name="Bo")
    bo = await domain.webinars.participant(services.tokens.verify(join_token(other)), wid)
    state = await policy.snapshot(bo)
    assert len(calls) == 2 and state["counts"]["registrants"] == 2  # shared part cached, seats fresh
