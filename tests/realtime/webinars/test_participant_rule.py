"""One participant rule: a banned attendee may still read the webinar but takes part in nothing, and
every refusal says ``banned`` (403), over REST and over the live protocol alike."""

import pytest

from tests.api import Api, join_token
from tests.wsclient import WsClient, close_all


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


async def banned_room(api, base_url, services):
    """A live webinar with an open poll and one question, and a registered attendee a host banned."""
    host = await api.host()
    token = host["access_token"]
    w = await api.webinar(token)
    wid = w["id"]
    guest = join_token(await api.register(wid, name="Mallory"))
    code, _ = await api.call("POST", f"/api/webinars/{wid}/live", token=token)
    assert code == 200
    code, poll = await api.call(
        "POST", f"/api/webinars/{wid}/polls", {"question": "?", "options": ["a", "b"]}, token
    )
    assert code == 201
    code, _ = await api.call("POST", f"/api/webinars/{wid}/polls/{poll['id']}/open", token=token)
    assert code == 200
    code, question = await api.call(
        "POST", f"/api/webinars/{wid}/questions", {"text": "Asked by a host"}, token
    )
    assert code == 201
    user_id = services.tokens.verify(guest).user_id
    code, _ = await api.call(
        "POST", f"/api/webinars/{wid}/moderation", {"user_id": user_id, "action": "ban"}, token
    )
    assert code == 200
    return token, guest, wid, poll["id"], question["id"]


@pytest.mark.gen_test
async def test_a_banned_attendee_is_refused_with_banned_over_rest(api, base_url, services):
    token, guest, wid, poll_id, question_id = await banned_room(api, base_url, services)
    actions = [
        ("POST", f"/api/webinars/{wid}/chat", {"text": "hi"}),
        ("POST", f"/api/webinars/{wid}/questions", {"text": "why?"}),
        ("POST", f"/api/webinars/{wid}/questions/{question_id}/upvote", None),
        ("POST", f"/api/webinars/{wid}/polls/{poll_id}/vote", {"choices": ["0"]}),
        ("POST", f"/api/webinars/{wid}/reactions", {"emoji": services.settings.reactions[0]}),
        ("POST", f"/api/webinars/{wid}/hands", {"action": "raise"}),
    ]
    for method, path, body in actions:
        code, reply = await api.call(method, path, body, guest)
        assert (path, code, reply["error"]["code"]) == (path, 403, "banned")
    # reading stays possible
    code, state = await api.call("GET", f"/api/webinars/{wid}/state", token=guest)
    assert code == 200 and state["role"] == "attendee"
    code, _ = await api.call("GET", f"/api/webinars/{wid}/questions", token=guest)
    assert code == 200


@pytest.mark.gen_test
async def test_a_banned_attendee_is_refused_with_banned_over_the_live_protocol(api, base_url, services):
    token, guest, wid, poll_id, question_id = await banned_room(api, base_url, services)
    live = await WsClient.connect(base_url, guest)
    refused = await live.subscribe(f"room:{wid}")
    assert (refused["type"], refused["code"]) == ("error", "banned")
    calls = [
        ("chat.send", {"text": "hi"}),
        ("qa.ask", {"text": "why?"}),
        ("qa.upvote", {"question_id": question_id}),
        ("poll.vote", {"poll_id": poll_id, "choices": ["0"]}),
        ("reaction.send", {"emoji": services.settings.reactions[0]}),
        ("hand.raise", {}),
    ]
    for method, params in calls:
        reply = await live.rpc(method, webinar_id=wid, **params)
        assert (method, reply.get("error", {}).get("code")) == (method, "banned")
    await live.send({"type": "publish", "channel": f"room:{wid}", "event": "typing", "data": {}})
    assert (await live.expect("error"))["code"] == "banned"
    # a host is never refused by the rule, and unbanning admits the attendee again
    user_id = services.tokens.verify(guest).user_id
    host = await WsClient.connect(base_url, token)
    assert "result" in await host.rpc("chat.send", webinar_id=wid, text="hosts take part")
    assert "result" in await host.rpc("chat.unban", webinar_id=wid, user_id=user_id)
    assert (await live.subscribe(f"room:{wid}"))["type"] == "subscribed"
    assert "result" in await live.rpc("chat.send", webinar_id=wid, text="back again")
    await close_all(services, live, host)
