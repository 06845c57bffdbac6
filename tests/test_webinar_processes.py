"""The webinar domain across real server processes: a ban holds on every process, and a restart in the
middle of a live webinar keeps all durable state."""

from __future__ import annotations

import pytest

from tests.api import Api, join_token
from tests.servers import AppProcess, RedisServer
from tests.wsclient import WsClient


@pytest.fixture
def env(mongo_server, test_id, tmp_path):
    return {
        "MONGODB_URL": mongo_server.url,
        "MONGODB_DATABASE": test_id,
        "REDIS_PREFIX": test_id + ":",
        "DATA_DIR": str(tmp_path),
        "LOG_LEVEL": "warning",
    }


@pytest.fixture
def two_processes(env):
    redis = RedisServer()
    redis.start()
    apps = [AppProcess({**env, "REDIS_URL": redis.url}) for _ in range(2)]
    for app in apps:
        app.start()
    yield apps
    for app in apps:
        app.stop()
    redis.close()


@pytest.mark.gen_test(timeout=60)
async def test_ban_holds_across_processes_tabs_and_reconnects(http_client, two_processes):
    a, b = two_processes
    api_a, api_b = Api(http_client, a.url), Api(http_client, b.url)
    token, guest, w = await api_a.live_webinar()
    wid = w["id"]
    room = f"room:{wid}"
    tab_b = await WsClient.connect(b.url, guest)
    tab_a = await WsClient.connect(a.url, guest)
    assert (await tab_b.subscribe(room))["type"] == "subscribed"
    assert (await tab_a.subscribe(room))["type"] == "subscribed"
    code, me = await api_b.call("GET", "/api/me", token=guest)
    code, _ = await api_a.call(
        "POST", f"/api/webinars/{wid}/moderation", {"user_id": me["id"], "action": "ban"}, token
    )
    assert code == 200
    # both tabs are removed from the room, the one on the other process too
    assert (await tab_b.expect("unsubscribed", channel=room))["reason"] == "banned"
    assert (await tab_a.expect("unsubscribed", channel=room))["reason"] == "banned"
    for url in (a.url, b.url):
        again = await WsClient.connect(url, guest)
        assert (await again.subscribe(room))["code"] == "banned"
        assert (await again.rpc("chat.send", webinar_id=wid, text="hi"))["error"]["code"] == "banned"
        again.close()
    code, body = await api_b.call("POST", f"/api/webinars/{wid}/chat", {"text": "hi"}, guest)
    assert (code, body["error"]["code"]) == (403, "banned")
    tab_a.close()
    tab_b.close()


@pytest.mark.gen_test(timeout=120)
async def test_restart_mid_webinar_keeps_durable_state(http_client, env):
    app = AppProcess(env)
    app.start()
    try:
        api = Api(http_client, app.url)
        host = await api.host()
        token = host["access_token"]
        w = await api.webinar(token, capacity=3)
        wid = w["id"]
        reg = await api.register(wid, name="Ada")
        guest = join_token(reg)
        await api.call("POST", f"/api/webinars/{wid}/live", token=token)
        code, chat = await api.call("POST", f"/api/webinars/{wid}/chat", {"text": "before restart"}, guest)
        code, q = await api.call("POST", f"/api/webinars/{wid}/questions", {"text": "Still there?"}, guest)
        await api.call("POST", f"/api/webinars/{wid}/questions/{q['id']}/upvote", token=guest)
        await api.call("POST", f"/api/webinars/{wid}/questions/{q['id']}/pin", token=token)
        code, poll = await api.call(
            "POST", f"/api/webinars/{wid}/polls", {"question": "?", "options": ["a", "b"]}, token
        )
        await api.call("POST", f"/api/webinars/{wid}/polls/{poll['id']}/open", token=token)
        await api.call("POST", f"/api/webinars/{wid}/polls/{poll['id']}/vote", {"choices": ["1"]}, guest)
        await api.call("POST", f"/api/webinars/{wid}/announcements", {"text": "Back soon"}, token)
        code, before = await api.call("GET", f"/api/webinars/{wid}/timeline", token=token)

        assert app.stop() == 0
        app.start()

        code, got = await api.call("GET", f"/api/webinars/{wid}")
        assert got["status"] == "live" and got["seats_taken"] == 1
        code, after = await api.call("GET", f"/api/webinars/{wid}/timeline", token=guest)
        assert after["timeline"] == before["timeline"]
        live = await WsClient.connect(app.url, guest)
        state = (await live.subscribe(f"room:{wid}"))["state"]
        assert state["pinned_question"]["id"] == q["id"] and state["pinned_question"]["votes"] == 1
        assert [p["id"] for p in state["open_polls"]] == [poll["id"]]
        assert state["announcement"]["text"] == "Back soon"
        assert state["recent"][-1]["seq"] == before["timeline"][-1]["seq"]
        # one vote and one upvote per person still hold; the room goes on
        reply = await live.rpc("poll.vote", webinar_id=wid, poll_id=poll["id"], choices=["0"])
        assert reply["error"]["code"] == "already_voted"
        reply = await live.rpc("qa.upvote", webinar_id=wid, question_id=q["id"])
        assert reply["error"]["code"] == "already_voted"
        reply = await live.rpc("chat.send", webinar_id=wid, text="after restart")
        assert reply["result"]["seq"] == before["timeline"][-1]["seq"] + 1
        # sessions survive: the refresh token rotates, the access token still works
        code, body = await api.call("POST", "/api/auth/refresh", {"refresh_token": host["refresh_token"]})
        assert code == 200
        code, polls = await api.call("GET", f"/api/webinars/{wid}/polls", token=token)
        assert polls["polls"][0]["counts"] == {"0": 0, "1": 1}
        code, _ = await api.call("POST", f"/api/webinars/{wid}/live", token=token)
        assert code == 409
        live.close()
    finally:
        app.stop()


@pytest.mark.gen_test(timeout=60)
async def test_going_live_moves_the_whole_lobby_on_every_process(http_client, two_processes):
    a, b = two_processes
    api = Api(http_client, a.url)
    host = await api.host()
    w = await api.webinar(host["access_token"])
    wid = w["id"]
    lobby = []
    for i in range(6):
        reg = await api.register(wid, name=f"P{i}")
        client = await WsClient.connect((a, b)[i % 2].url, join_token(reg))
        assert (await client.subscribe(f"room:{wid}"))["state"]["webinar"]["status"] == "scheduled"
        lobby.append(client)
    host_ws = await WsClient.connect(b.url, host["access_token"])
    assert (await host_ws.rpc("webinar.go_live", webinar_id=wid))["result"] == {"status": "live"}
    seqs = {(await c.expect("webinar.live", channel=f"room:{wid}"))["seq"] for c in lobby}
    assert len(seqs) == 1
    reply = await lobby[1].rpc("chat.send", webinar_id=wid, text="we are in")
    assert reply["result"]["seq"] == seqs.pop() + 1
    for client in [*lobby, host_ws]:
        client.close()


@pytest.mark.gen_test(timeout=90)
async def test_a_cancelled_registrations_link_is_refused_on_the_other_process(http_client, two_processes):
    a, b = two_processes
    api_a, api_b = Api(http_client, a.url), Api(http_client, b.url)
    host = await api_a.host()
    w = await api_a.webinar(host["access_token"])
    reg = await api_a.register(w["id"], "Cy")
    guest = join_token(reg)
    assert (await api_b.call("GET", f"/api/webinars/{w['id']}/state", token=guest))[0] == 200
    code, cancelled = await api_a.call(
        "DELETE", f"/api/webinars/{w['id']}/registrations/{reg['id']}", token=guest
    )
    assert code == 200 and cancelled["status"] == "cancelled"
    code, body = await api_b.call("GET", f"/api/webinars/{w['id']}/state", token=guest)
    assert code == 403 and body["error"]["code"] == "forbidden"
    tab = await WsClient.connect(b.url, guest)
    refused = await tab.subscribe(f"room:{w['id']}")
    assert refused["type"] == "error" and refused["code"] == "forbidden"
    tab.close()
