"""An attendee's own state in the room survives reloads and reconnects, over real WebSockets: the
snapshot's ``me`` (votes, hand, moderation, own questions, upvotes), a vote is final, a host's
lowering of a hand, a mute and a ban reach the attendee's own channel at once, and an author may
withdraw their question but not upvote it."""

from __future__ import annotations

import pytest

from tests.api import Api, join_token
from tests.wsclient import WsClient, close_all


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


async def live_room(api, base_url, services, **fields):
    """A live webinar: the host's token and socket, and one attendee's token, id and socket
    (subscribed to their own channel first, as the page does, then to the room)."""
    token = (await api.host())["access_token"]
    w = await api.webinar(token, **fields)
    guest = join_token(await api.register(w["id"], name="Ada"))
    assert (await api.call("POST", f"/api/webinars/{w['id']}/live", token=token))[0] == 200
    host_ws = await WsClient.connect(base_url, token)
    guest_ws = await WsClient.connect(base_url, guest)
    uid = services.tokens.verify(guest).user_id
    assert (await guest_ws.subscribe(f"user:{uid}"))["type"] == "subscribed"
    assert (await guest_ws.subscribe(f"room:{w['id']}"))["type"] == "subscribed"
    return token, guest, uid, w["id"], host_ws, guest_ws


async def reload(base_url, token, wid):
    """A reloaded page: a new connection's room snapshot."""
    ws = await WsClient.connect(base_url, token)
    sub = await ws.subscribe(f"room:{wid}")
    assert sub["type"] == "subscribed", sub
    return ws, sub["state"]


@pytest.mark.gen_test(timeout=60)
async def test_the_snapshot_carries_my_votes_hand_moderation_questions_and_upvotes(api, base_url, services):
    token, guest, uid, wid, host_ws, guest_ws = await live_room(api, base_url, services, qa_moderation=True)
    pid = (await host_ws.rpc("poll.create", webinar_id=wid, question="Q", options=["a", "b"]))["result"]["id"]
    assert "result" in await host_ws.rpc("poll.open", webinar_id=wid, poll_id=pid)
    assert "result" in await guest_ws.rpc("poll.vote", webinar_id=wid, poll_id=pid, choices=["1"])
    assert "result" in await guest_ws.rpc("hand.raise", webinar_id=wid)
    mine = (await guest_ws.rpc("qa.ask", webinar_id=wid, text="Mine, pending"))["result"]
    theirs = (await host_ws.rpc("qa.ask", webinar_id=wid, text="The host's"))["result"]
    assert "result" in await guest_ws.rpc("qa.upvote", webinar_id=wid, question_id=theirs["id"])
    assert "result" in await host_ws.rpc("announcement.send", webinar_id=wid, text="First")
    assert "result" in await host_ws.rpc("announcement.send", webinar_id=wid, text="Second")
    assert "result" in await host_ws.rpc("chat.mute", webinar_id=wid, user_id=uid)

    again, state = await reload(base_url, guest, wid)
    me = state["me"]
    assert me["user_id"] == uid and me["votes"] == {pid: ["1"]}
    assert me["hand_raised"] is True and me["muted"] is True and me["banned"] is False
    assert [(q["id"], q["approved"], q["status"]) for q in me["questions"]] == [(mine["id"], False, "open")]
    assert me["upvoted"] == [theirs["id"]]
    assert [a["text"] for a in state["announcements"]] == ["Second", "First"]
    assert state["announcement"]["text"] == "Second"
    # REST gives the same snapshot
    code, body = await api.call("GET", f"/api/webinars/{wid}/state", token=guest)
    assert code == 200 and body["me"] == me
    # the host's own state is theirs, not the attendee's
    host_state = (await host_ws.subscribe(f"room:{wid}"))["state"]
    assert host_state["me"]["votes"] == {} and [q["id"] for q in host_state["me"]["questions"]] == [
        theirs["id"]
    ]
    await close_all(services, host_ws, guest_ws, again)


@pytest.mark.gen_test(timeout=60)
async def test_a_vote_is_final_and_the_refusal_names_the_kept_choice(api, base_url, services):
    token, guest, uid, wid, host_ws, guest_ws = await live_room(api, base_url, services)
    pid = (await host_ws.rpc("poll.create", webinar_id=wid, question="Q", options=["a", "b"]))["result"]["id"]
    assert "result" in await host_ws.rpc("poll.open", webinar_id=wid, poll_id=pid)
    assert "result" in await guest_ws.rpc("poll.vote", webinar_id=wid, poll_id=pid, choices=["0"])
    again = (await guest_ws.rpc("poll.vote", webinar_id=wid, poll_id=pid, choices=["1"]))["error"]
    assert (again["code"], again["choices"]) == ("already_voted", ["0"])
    code, body = await api.call("POST", f"/api/webinars/{wid}/polls/{pid}/vote", {"choices": ["1"]}, guest)
    assert (code, body["error"]["code"], body["error"]["choices"]) == (409, "already_voted", ["0"])
    code, body = await api.call("GET", f"/api/webinars/{wid}/polls", token=token)
    assert body["polls"][0]["counts"] == {"0": 1, "1": 0} and body["polls"][0]["voters"] == 1
    await close_all(services, host_ws, guest_ws)


@pytest.mark.gen_test(timeout=60)
async def test_a_host_lowering_my_hand_reaches_my_own_channel(api, base_url, services):
    token, guest, uid, wid, host_ws, guest_ws = await live_room(api, base_url, services)
    assert "result" in await guest_ws.rpc("hand.raise", webinar_id=wid)
    raised = await guest_ws.expect("hand.raised", channel=f"user:{uid}")
    assert raised["data"] == {"webinar_id": wid, "by": "you"} and "seq" in raised
    assert "result" in await host_ws.rpc("hand.lower", webinar_id=wid, user_id=uid)
    lowered = await guest_ws.expect("hand.lowered", channel=f"user:{uid}")
    assert lowered["data"] == {"webinar_id": wid, "by": "host"}
    again, state = await reload(base_url, guest, wid)
    assert state["me"]["hand_raised"] is False
    # one call raises it again
    assert (await guest_ws.rpc("hand.raise", webinar_id=wid))["result"] == {"user_id": uid, "raised": True}
    code, body = await api.call("GET", f"/api/webinars/{wid}/hands", token=token)
    assert [h["user_id"] for h in body["hands"]] == [uid]
    await close_all(services, host_ws, guest_ws, again)


@pytest.mark.gen_test(timeout=60)
async def test_a_ban_takes_the_hand_out_of_the_queue(api, base_url, services):
    token, guest, uid, wid, host_ws, guest_ws = await live_room(api, base_url, services)
    assert (await host_ws.subscribe(f"backstage:{wid}"))["type"] == "subscribed"
    assert "result" in await guest_ws.rpc("hand.raise", webinar_id=wid)
    await host_ws.expect("hand.raised", channel=f"backstage:{wid}")
    assert "result" in await host_ws.rpc("chat.ban", webinar_id=wid, user_id=uid)
    assert (await host_ws.expect("hand.lowered", channel=f"backstage:{wid}"))["data"] == {"user_id": uid}
    code, body = await api.call("GET", f"/api/webinars/{wid}/hands", token=token)
    assert body["hands"] == []
    code, body = await api.call("GET", f"/api/webinars/{wid}/state", token=guest)
    assert body["me"]["banned"] is True and body["me"]["hand_raised"] is False
    await close_all(services, host_ws, guest_ws)


@pytest.mark.gen_test(timeout=60)
async def test_a_mute_and_an_unmute_reach_my_own_channel_at_once(api, base_url, services):
    token, guest, uid, wid, host_ws, guest_ws = await live_room(api, base_url, services)
    assert "result" in await host_ws.rpc("chat.mute", webinar_id=wid, user_id=uid)
    muted = await guest_ws.expect("moderation", channel=f"user:{uid}")
    assert muted["data"] == {"webinar_id": wid, "user_id": uid, "action": "mute"}
    assert (await guest_ws.rpc("chat.send", webinar_id=wid, text="x"))["error"]["code"] == "muted"
    code, _ = await api.call(
        "POST", f"/api/webinars/{wid}/moderation", {"user_id": uid, "action": "unmute"}, token
    )
    assert code == 200
    unmuted = await guest_ws.expect("moderation", channel=f"user:{uid}")
    assert unmuted["data"]["action"] == "unmute"
    again, state = await reload(base_url, guest, wid)
    assert state["me"]["muted"] is False
    assert "result" in await guest_ws.rpc("chat.send", webinar_id=wid, text="back")
    await close_all(services, host_ws, guest_ws, again)


@pytest.mark.gen_test(timeout=60)
async def test_my_questions_withdraw_and_no_upvote_of_my_own(api, base_url, services):
    token, guest, uid, wid, host_ws, guest_ws = await live_room(api, base_url, services, qa_moderation=True)
    other = join_token(await api.register(wid, name="Bea"))
    bea = await WsClient.connect(base_url, other)
    pending = (await guest_ws.rpc("qa.ask", webinar_id=wid, text="Pending one"))["result"]
    mine = await guest_ws.expect("qa.mine", channel=f"user:{uid}")
    assert mine["data"]["id"] == pending["id"] and mine["data"]["approved"] is False
    assert mine["data"]["webinar_id"] == wid
    assert "result" in await host_ws.rpc("qa.approve", webinar_id=wid, question_id=pending["id"])
    approved = await guest_ws.expect("qa.mine", channel=f"user:{uid}")
    assert approved["data"]["approved"] is True
    # the author may not upvote it; someone else may, once
    reply = await guest_ws.rpc("qa.upvote", webinar_id=wid, question_id=pending["id"])
    assert reply["error"]["code"] == "own_question"
    code, body = await api.call("POST", f"/api/webinars/{wid}/questions/{pending['id']}/upvote", token=guest)
    assert (code, body["error"]["code"]) == (409, "own_question")
    assert "result" in await bea.rpc("qa.upvote", webinar_id=wid, question_id=pending["id"])
    # only the author withdraws
    reply = await bea.rpc("qa.withdraw", webinar_id=wid, question_id=pending["id"])
    assert reply["error"]["code"] == "forbidden"
    code, body = await api.call(
        "POST", f"/api/webinars/{wid}/questions/{pending['id']}/withdraw", token=other
    )
    assert (code, body["error"]["code"]) == (403, "forbidden")
    reply = await guest_ws.rpc("qa.withdraw", webinar_id=wid, question_id=pending["id"])
    assert reply["result"]["status"] == "withdrawn"
    gone = await guest_ws.expect(lambda m: m["type"] == "qa.updated" and m["data"]["status"] == "withdrawn")
    assert gone["channel"] == f"room:{wid}" and gone["data"]["id"] == pending["id"]
    reply = await guest_ws.rpc("qa.withdraw", webinar_id=wid, question_id=pending["id"])
    assert reply["error"]["code"] == "question_closed"
    reply = await host_ws.rpc("qa.answer", webinar_id=wid, question_id=pending["id"])
    assert reply["error"]["code"] == "question_withdrawn"
    for who in (guest, token):
        code, body = await api.call("GET", f"/api/webinars/{wid}/questions", token=who)
        assert body["questions"] == []
    code, body = await api.call("POST", f"/api/webinars/{wid}/questions/nope/withdraw", token=guest)
    assert code == 404
    again, state = await reload(base_url, guest, wid)
    assert [(q["id"], q["status"]) for q in state["me"]["questions"]] == [(pending["id"], "withdrawn")]
    await close_all(services, host_ws, guest_ws, bea, again)


@pytest.mark.gen_test(timeout=60)
async def test_a_reload_after_a_vote_shows_the_vote_in_the_results(api, base_url, services):
    """A vote publishes no durable room message, so the room's seq does not change with it: the
    snapshot's poll counts must not come from a copy cached at that seq."""
    token, guest, uid, wid, host_ws, guest_ws = await live_room(api, base_url, services)
    pid = (await host_ws.rpc("poll.create", webinar_id=wid, question="Q", options=["a", "b"]))["result"]["id"]
    for action in ("poll.open", "poll.show_results"):
        assert "result" in await host_ws.rpc(action, webinar_id=wid, poll_id=pid)
    before, state = await reload(base_url, guest, wid)
    assert state["open_polls"][0]["counts"] == {"0": 0, "1": 0}
    assert "result" in await guest_ws.rpc("poll.vote", webinar_id=wid, poll_id=pid, choices=["1"])
    after, state = await reload(base_url, guest, wid)
    assert state["open_polls"][0]["counts"] == {"0": 0, "1": 1} and state["open_polls"][0]["voters"] == 1
    assert state["me"]["votes"] == {pid: ["1"]}
    await close_all(services, host_ws, guest_ws, before, after)
