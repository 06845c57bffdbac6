"""The webinar domain across real server processes: a ban and a logout end the user's live sessions
(WebSocket and SSE) on every process, and a restart in the middle of a live webinar keeps all durable
state."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.api import Api, join_token
from tests.servers import AppProcess, app_processes
from tests.sseclient import EventStream, ticket_for
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
def process_env():
    """Extra settings of the two processes; a test overrides it with ``parametrize``."""
    return {}


@pytest.fixture
def two_processes(mongo_server, test_id, tmp_path, process_env):
    with app_processes(mongo_server.url, test_id, tmp_path, **process_env) as (_, apps):
        yield apps


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
    viewer_b = await EventStream().open(b.url, await ticket_for(http_client, b.url, guest), [room])
    await viewer_b.event("subscribed")
    code, me = await api_b.call("GET", "/api/me", token=guest)
    code, _ = await api_a.call(
        "POST", f"/api/webinars/{wid}/moderation", {"user_id": me["id"], "action": "ban"}, token
    )
    assert code == 200
    # every connection in the room is closed with 4003, the ones on the other process too
    for tab in (tab_a, tab_b):
        closed = await tab.closed()
        assert (closed.code, closed.reason) == (4003, "banned")
    events = await viewer_b.end()
    assert events[-1]["event"] == "kicked"
    assert json.loads(events[-1]["data"]) == {"code": 4003, "reason": "banned"}
    await viewer_b.close()
    for url in (a.url, b.url):
        again = await WsClient.connect(url, guest)
        assert (await again.subscribe(room))["code"] == "banned"
        assert (await again.rpc("chat.send", webinar_id=wid, text="hi"))["error"]["code"] == "banned"
        again.close()
    code, body = await api_b.call("POST", f"/api/webinars/{wid}/chat", {"text": "hi"}, guest)
    assert (code, body["error"]["code"]) == (403, "banned")
    tab_a.close()
    tab_b.close()


@pytest.mark.gen_test(timeout=60)
async def test_logout_ends_the_tokens_sessions_on_every_process(http_client, two_processes):
    a, b = two_processes
    api_a = Api(http_client, a.url)
    _, guest, w = await api_a.live_webinar()
    room = f"room:{w['id']}"
    tab_b = await WsClient.connect(b.url, guest)
    viewer_b = await EventStream().open(b.url, await ticket_for(http_client, b.url, guest), [room])
    await viewer_b.event("subscribed")
    unused_ticket = await ticket_for(http_client, b.url, guest)
    code, _ = await api_a.call("POST", "/api/auth/logout", None, guest)
    assert code == 204
    assert (await tab_b.closed()).code == 4003
    events = await viewer_b.end()
    assert json.loads(events[-1]["data"]) == {"code": 4003, "reason": "logged out"}
    await viewer_b.close()
    refused = await EventStream().open(b.url, unused_ticket, [room])
    assert (refused.status, refused.error["code"]) == (401, "token_revoked")
    await refused.close()
    for url in (a.url, b.url):
        code, body = await Api(http_client, url).call("GET", "/api/me", token=guest)
        assert (code, body["error"]["code"]) == (401, "token_revoked")


@pytest.mark.gen_test(timeout=60)
async def test_an_sse_viewer_on_one_process_is_in_presence_and_attendance_on_the_other(
    http_client, two_processes
):
    a, b = two_processes
    api_a = Api(http_client, a.url)
    host, guest, w = await api_a.live_webinar()
    room = f"room:{w['id']}"
    watcher = await WsClient.connect(a.url, host)
    await watcher.subscribe(room)
    viewer_b = await EventStream().open(b.url, await ticket_for(http_client, b.url, guest), [room])
    await viewer_b.event("subscribed")
    while (await watcher.expect("presence", timeout=20))["data"]["count"] != 2:
        pass
    code, roster = await api_a.call("GET", f"/api/channels/{room}/presence", token=host)
    assert code == 200 and roster["count"] == 2
    # attendance is written behind (once a second): another process's session lands shortly
    while True:
        code, report = await api_a.call("GET", f"/api/webinars/{w['id']}/reports/attendance", token=host)
        rows = [r for r in report["attendance"] if r["registered"]]  # the viewer (hosts are left out)
        if rows and rows[0]["present_live"]:
            break
        await asyncio.sleep(0.2)
    (row,) = rows
    assert row["present_live"] is True and row["left_at"] is None
    await viewer_b.close()
    # Process b says who left; process a may first report the new count alone (its own recount).
    while not (update := await watcher.expect("presence", timeout=20))["data"]["left_total"]:
        pass
    assert update["data"]["count"] == 1 and update["data"]["left_total"] == 1
    watcher.close()


@pytest.mark.parametrize("process_env", [{"MAX_CONNECTIONS_PER_USER": "2"}])
@pytest.mark.gen_test(timeout=60)
async def test_the_per_user_cap_counts_connections_on_every_process(http_client, two_processes):
    a, b = two_processes
    _, guest, w = await Api(http_client, a.url).live_webinar()
    tab_a = await WsClient.connect(a.url, guest)
    viewer_b = await EventStream().open(
        b.url, await ticket_for(http_client, b.url, guest), [f"room:{w['id']}"]
    )
    await viewer_b.event("subscribed")
    for url in (a.url, b.url):  # the third connection is refused wherever it lands
        third = await WsClient.connect(url)
        await third.send({"type": "auth", "token": guest})
        assert (await third.expect("error"))["code"] == "too_many_connections"
        assert (await third.closed()).code == 4009
    over = await EventStream().open(a.url, await ticket_for(http_client, a.url, guest), [f"room:{w['id']}"])
    assert (over.status, over.error["code"]) == (429, "too_many_connections")
    await over.close()
    tab_a.close()

    async def admitted() -> WsClient:
        # The server offers no event for "the closed tab no longer counts"; retry until it does.
        while True:
            client = await WsClient.connect(b.url)
            await client.send({"type": "auth", "token": guest})
            if (await client.expect(lambda m: m["type"] in ("welcome", "error")))["type"] == "welcome":
                return client
            await client.closed()

    again = await asyncio.wait_for(admitted(), 20)
    again.close()
    await viewer_b.close()


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
        code, _ = await api.call("POST", f"/api/webinars/{wid}/questions/{q['id']}/upvote", token=token)
        assert code == 200  # the host's (an author cannot upvote their own question)
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
        code, body = await api.call("POST", f"/api/webinars/{wid}/questions/{q['id']}/upvote", token=token)
        assert (code, body["error"]["code"]) == (409, "already_voted")
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
    assert code == 401 and body["error"]["code"] == "token_revoked"
    for app in (a, b):
        tab = await WsClient.connect(app.url)
        await tab.send({"type": "auth", "token": guest})
        closed = await tab.closed()
        assert (closed.code, closed.reason) == (4001, "token_revoked")


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("by", ["attendee", "host"])
async def test_cancelling_a_registration_closes_its_connections_on_every_process(
    http_client, two_processes, by
):
    a, b = two_processes
    api_a, api_b = Api(http_client, a.url), Api(http_client, b.url)
    host = await api_a.host()
    w = await api_a.webinar(host["access_token"])
    wid = w["id"]
    reg = await api_a.register(wid, "Dee")
    guest = join_token(reg)
    lobby_b = await WsClient.connect(b.url, guest)
    assert (await lobby_b.subscribe(f"room:{wid}"))["type"] == "subscribed"
    viewer_a = await EventStream().open(a.url, await ticket_for(http_client, a.url, guest), [f"room:{wid}"])
    await viewer_a.event("subscribed")
    if by == "attendee":  # from the cancel page their link or mail leads to
        code, cancelled = await api_a.call("DELETE", f"/api/webinars/{wid}/registration", token=guest)
    else:
        code, cancelled = await api_a.call(
            "DELETE", f"/api/webinars/{wid}/registrations/{reg['id']}", token=host["access_token"]
        )
    assert code == 200 and cancelled["status"] == "cancelled"
    closed = await lobby_b.closed()
    assert (closed.code, closed.reason) == (4003, "registration cancelled")
    events = await viewer_a.end()
    assert json.loads(events[-1]["data"]) == {"code": 4003, "reason": "registration cancelled"}
    await viewer_a.close()
    code, body = await api_b.call("DELETE", f"/api/webinars/{wid}/registration", token=guest)
    assert code == 401 and body["error"]["code"] == "token_revoked"
