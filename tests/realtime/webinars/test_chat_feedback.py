"""What the chat tells its readers: the sender's role on every message (for a badge), and the
remaining wait (``retry_after``) with a limit's refusal, over RPC as over REST."""

import pytest

from tests.api import Api, join_token
from tests.wsclient import WsClient, close_all


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


@pytest.fixture
def services_env():
    return {"CHAT_RATE": "2"}


@pytest.mark.gen_test(timeout=60)
async def test_messages_carry_the_senders_role_and_refusals_the_wait(api, base_url, services):
    host = await api.host()
    token = host["access_token"]
    wid = (await api.webinar(token))["id"]
    reg = await api.register(wid, name="Ada")
    await api.call("POST", f"/api/webinars/{wid}/live", token=token)
    host_ws = await WsClient.connect(base_url, token)
    guest_ws = await WsClient.connect(base_url, join_token(reg))
    await guest_ws.subscribe(f"room:{wid}")

    mine = (await guest_ws.rpc("chat.send", webinar_id=wid, text="hello"))["result"]
    theirs = (await host_ws.rpc("chat.send", webinar_id=wid, text="welcome"))["result"]
    assert (mine["role"], theirs["role"]) == ("attendee", "host")
    heard = await guest_ws.expect("chat.message", channel=f"room:{wid}")
    while heard["data"]["text"] != "welcome":
        heard = await guest_ws.expect("chat.message", channel=f"room:{wid}")
    assert heard["data"]["role"] == "host"
    late = await WsClient.connect(base_url, join_token(await api.register(wid, name="Bo")))
    recent = (await late.subscribe(f"room:{wid}"))["state"]["recent"]
    assert {m["data"]["text"]: m["data"]["role"] for m in recent if m["type"] == "chat.message"} == {
        "hello": "attendee",
        "welcome": "host",
    }

    # the rate limit (2 per 10 s here): the refusal says how long to wait, in whole seconds
    reply = await guest_ws.rpc("chat.send", webinar_id=wid, text="two")
    while "result" in reply:
        reply = await guest_ws.rpc("chat.send", webinar_id=wid, text="more")
    assert reply["error"]["code"] == "rate_limited"
    assert isinstance(reply["error"]["retry_after"], int) and 1 <= reply["error"]["retry_after"] <= 10
    # slow mode
    await api.call("PUT", f"/api/webinars/{wid}/slow-mode", {"seconds": 30}, token)
    bo = await WsClient.connect(base_url, join_token(await api.register(wid, name="Cy")))
    assert "result" in await bo.rpc("chat.send", webinar_id=wid, text="one")
    reply = await bo.rpc("chat.send", webinar_id=wid, text="two")
    assert reply["error"]["code"] == "slow_mode" and 1 <= reply["error"]["retry_after"] <= 30
    await close_all(services, host_ws, guest_ws, late, bo)
