"""Panelists: the host names them by email (a registrant's or a host account's); they speak in the
room (chat without pace and with their role on each message, answering the questions the room sees)
and are refused every host action, over REST and over the live protocol alike."""

from __future__ import annotations

import pytest

from tests.api import Api, join_token
from tests.wsclient import WsClient, close_all


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


async def panel_room(api, services, *, live=True, **fields):
    """A webinar with a host, a co-host, a panelist (a registrant), an attendee, an open poll, one
    approved question and one registration awaiting approval."""
    token = (await api.host())["access_token"]
    cohost = await api.host(name="Cora Cohost")
    w = await api.webinar(token, cohosts=[cohost["user"]["email"]], **fields)
    wid = w["id"]
    pia = await api.register(wid, name="Pia")
    guest = join_token(await api.register(wid, name="Ada"))
    code, w = await api.call("PATCH", f"/api/webinars/{wid}", {"panelists": [pia["email"]]}, token)
    assert code == 200, w
    assert w["panelists"] == [pia["email"]]
    if live:
        assert (await api.call("POST", f"/api/webinars/{wid}/live", token=token))[0] == 200
    code, poll = await api.call(
        "POST", f"/api/webinars/{wid}/polls", {"question": "?", "options": ["a", "b"]}, token
    )
    assert code == 201
    code, question = await api.call("POST", f"/api/webinars/{wid}/questions", {"text": "Why?"}, guest)
    assert code == 201
    return {
        "host": token,
        "cohost": cohost["access_token"],
        "panelist": join_token(pia),
        "panelist_id": pia["user_id"],
        "guest": guest,
        "guest_id": services.tokens.verify(guest).user_id,
        "wid": wid,
        "poll": poll["id"],
        "question": question["id"],
    }


@pytest.mark.gen_test
async def test_the_host_adds_and_removes_panelists_by_email(api, services):
    token = (await api.host())["access_token"]
    cohost = await api.host(name="Cora Cohost")
    staff_panelist = await api.host(name="Pete Panel")
    w = await api.webinar(token, cohosts=[cohost["user"]["email"]])
    wid = w["id"]
    ada = await api.register(wid, name="Ada")
    emails = [ada["email"], staff_panelist["user"]["email"]]

    code, body = await api.call("PATCH", f"/api/webinars/{wid}", {"panelists": ["nobody@example.com"]}, token)
    assert (code, body["error"]["code"]) == (409, "panelist_not_found")
    assert "nobody@example.com" in body["error"]["message"]
    # co-hosts run the room but the panel is the owner's, as every other field of the webinar
    body = {"panelists": emails}
    code, body = await api.call("PATCH", f"/api/webinars/{wid}", body, cohost["access_token"])
    assert (code, body["error"]["code"]) == (403, "forbidden")

    code, w = await api.call("PATCH", f"/api/webinars/{wid}", {"panelists": emails}, token)
    assert code == 200 and w["panelists"] == emails
    code, public = await api.call("GET", f"/api/webinars/{wid}")
    assert code == 200 and "panelists" not in public  # nobody's email on the public page
    code, state = await api.call("GET", f"/api/webinars/{wid}/state", token=join_token(ada))
    assert (code, state["role"]) == (200, "panelist")
    # a host account on the panel takes part with its own token, registered or not
    code, state = await api.call("GET", f"/api/webinars/{wid}/state", token=staff_panelist["access_token"])
    assert (code, state["role"]) == (200, "panelist")
    code, mine = await api.call("GET", "/api/webinars", token=staff_panelist["access_token"])
    assert code == 200 and wid not in [x["id"] for x in mine["webinars"]]  # not theirs to run

    code, w = await api.call("PATCH", f"/api/webinars/{wid}", {"panelists": [ada["email"]]}, token)
    assert code == 200 and w["panelists"] == [ada["email"]]
    code, body = await api.call("GET", f"/api/webinars/{wid}/state", token=staff_panelist["access_token"])
    assert (code, body["error"]["code"]) == (403, "forbidden")
    code, w = await api.call("PATCH", f"/api/webinars/{wid}", {"panelists": []}, token)
    assert code == 200 and w["panelists"] == []
    code, state = await api.call("GET", f"/api/webinars/{wid}/state", token=join_token(ada))
    assert (code, state["role"]) == (200, "attendee")


@pytest.mark.gen_test
async def test_a_panelist_is_refused_every_host_action_over_rest(api, services):
    r = await panel_room(api, services)
    wid, W = r["wid"], f"/api/webinars/{r['wid']}"
    code, regs = await api.call("GET", f"{W}/registrations", token=r["host"])
    reg_id = regs["registrations"][0]["id"]
    code, chat = await api.call("POST", f"{W}/chat", {"text": "hello"}, r["guest"])
    assert code == 201
    actions = [
        ("PATCH", W, {"title": "Mine now"}),
        ("POST", f"{W}/end", None),
        ("POST", f"{W}/cancel", None),
        ("GET", f"{W}/registrations", None),
        ("GET", f"{W}/registrations.csv", None),
        ("POST", f"{W}/registrations/{reg_id}/approve", None),
        ("DELETE", f"{W}/chat/{chat['id']}", None),
        ("GET", f"{W}/moderation", None),
        ("POST", f"{W}/moderation", {"user_id": r["guest_id"], "action": "mute"}),
        ("PUT", f"{W}/slow-mode", {"seconds": 30}),
        ("POST", f"{W}/polls", {"question": "?", "options": ["a", "b"]}),
        ("POST", f"{W}/polls/{r['poll']}/open", None),
        ("GET", f"{W}/hands", None),
        ("POST", f"{W}/announcements", {"text": "Listen to me"}),
        ("GET", f"{W}/reports/attendance", None),
        ("GET", f"{W}/reports/engagement", None),
        ("GET", f"{W}/reports/feedback", None),
        ("POST", "/api/notifications", {"webinar_id": wid, "title": "Hi"}),
    ]
    Q = f"{W}/questions/{r['question']}"
    actions += [("POST", f"{Q}/{a}", None) for a in ("approve", "dismiss", "pin", "unpin")]
    for method, path, body in actions:
        code, reply = await api.call(method, path, body, r["panelist"])
        assert (method, path, code, reply and reply["error"]["code"]) == (method, path, 403, "forbidden")
    code, w = await api.call("GET", W, token=r["host"])
    assert (w["status"], w["title"], w["slow_mode_seconds"]) == ("live", "Launch day", 0)


@pytest.mark.gen_test
async def test_a_panelist_is_refused_every_host_action_over_the_live_protocol(api, base_url, services):
    r = await panel_room(api, services, live=False)
    wid = r["wid"]
    live = await WsClient.connect(base_url, r["panelist"])
    refused = await live.subscribe(f"backstage:{wid}")
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    reply = await live.rpc("webinar.go_live", webinar_id=wid)
    assert reply["error"]["code"] == "forbidden"
    assert (await api.call("POST", f"/api/webinars/{wid}/live", token=r["host"]))[0] == 200
    code, chat = await api.call("POST", f"/api/webinars/{wid}/chat", {"text": "hello"}, r["guest"])
    assert code == 201
    calls = [
        ("webinar.end", {}),
        ("chat.delete", {"message_id": chat["id"]}),
        ("chat.mute", {"user_id": r["guest_id"]}),
        ("chat.unmute", {"user_id": r["guest_id"]}),
        ("chat.ban", {"user_id": r["guest_id"]}),
        ("chat.unban", {"user_id": r["guest_id"]}),
        ("chat.slow_mode", {"seconds": 30}),
        ("qa.approve", {"question_id": r["question"]}),
        ("qa.dismiss", {"question_id": r["question"]}),
        ("qa.pin", {"question_id": r["question"]}),
        ("qa.unpin", {"question_id": r["question"]}),
        ("poll.create", {"question": "?", "options": ["a", "b"]}),
        ("poll.open", {"poll_id": r["poll"]}),
        ("poll.close", {"poll_id": r["poll"]}),
        ("poll.show_results", {"poll_id": r["poll"]}),
        ("announcement.send", {"text": "Listen to me"}),
        ("hand.lower", {"user_id": r["guest_id"]}),
    ]
    for method, params in calls:
        reply = await live.rpc(method, webinar_id=wid, **params)
        assert (method, reply.get("error", {}).get("code")) == (method, "forbidden")
    code, w = await api.call("GET", f"/api/webinars/{wid}", token=r["host"])
    assert (w["status"], w["slow_mode_seconds"]) == ("live", 0)
    await close_all(services, live)


@pytest.mark.gen_test
async def test_a_panelist_chats_with_their_role_unpaced_and_answers_questions(api, base_url, services):
    r = await panel_room(api, services, qa_moderation=True)
    wid = r["wid"]
    code, _ = await api.call("PUT", f"/api/webinars/{wid}/slow-mode", {"seconds": 60}, r["host"])
    assert code == 200
    watcher = await WsClient.connect(base_url, r["guest"])
    assert (await watcher.subscribe(f"room:{wid}"))["type"] == "subscribed"
    panel = await WsClient.connect(base_url, r["panelist"])
    sub = await panel.subscribe(f"room:{wid}")
    assert (sub["type"], sub["state"]["role"]) == ("subscribed", "panelist")

    # slow mode holds attendees to one message a minute, never a speaker
    for text in ("First", "Second"):
        reply = await panel.rpc("chat.send", webinar_id=wid, text=text)
        assert reply["result"]["role"] == "panelist", reply
        seen = await watcher.expect("chat.message")
        assert (seen["data"]["text"], seen["data"]["role"]) == (text, "panelist")
    assert (await watcher.rpc("chat.send", webinar_id=wid, text="one"))["result"]["role"] == "attendee"
    assert (await watcher.rpc("chat.send", webinar_id=wid, text="two"))["error"]["code"] == "slow_mode"

    # with pre-approval on, the question asked in panel_room waits for a host: not a panelist's yet
    reply = await panel.rpc("qa.answer", webinar_id=wid, question_id=r["question"], answer="Because")
    assert reply["error"]["code"] == "forbidden"
    Q = f"/api/webinars/{wid}/questions/{r['question']}"
    code, body = await api.call("POST", f"{Q}/answer", None, r["guest"])
    assert (code, body["error"]["code"]) == (403, "forbidden")  # an attendee answers nothing
    code, _ = await api.call("POST", f"{Q}/approve", token=r["host"])
    assert code == 200
    reply = await panel.rpc("qa.answer", webinar_id=wid, question_id=r["question"], answer="Because")
    assert (reply["result"]["status"], reply["result"]["answer"]) == ("answered", "Because")
    seen = await watcher.expect(lambda m: m["type"] == "qa.updated" and m["data"]["status"] == "answered")
    assert seen["data"]["answer"] == "Because"
    assert seen["data"]["answered_by"] == {"name": "Pia", "role": "panelist"}
    code, q = await api.call("POST", f"{Q}/answer", {"answer": "Over REST"}, r["panelist"])
    assert (code, q["answer"]) == (200, "Over REST")

    # a removed panelist is an attendee again on their next message
    code, _ = await api.call("PATCH", f"/api/webinars/{wid}", {"panelists": []}, r["host"])
    assert code == 200
    reply = await panel.rpc("chat.send", webinar_id=wid, text="Still here")
    assert reply["result"]["role"] == "attendee"
    await close_all(services, watcher, panel)
