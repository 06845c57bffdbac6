"""SSE with single-use tickets and Last-Event-ID resume; the REST publish, history and presence API."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from tornado.httpclient import HTTPClientError

from tests.sseclient import EventStream, ticket_for

API_KEY = "integrator-key-0123456789abcdef0123456789"


@pytest.fixture
def services_env():
    return {"API_KEYS": f"crm:{API_KEY}", "PRESENCE_INTERVAL": "0.1"}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.mark.gen_test(timeout=30)
async def test_sse_stream_resumes_with_last_event_id(http_client, base_url, services):
    token = services.tokens.issue("u1", role="attendee")
    reader = await EventStream().open(base_url, await ticket_for(http_client, base_url, token), ["user:u1"])
    await reader.wait(1)
    for i in range(3):
        await services.hub.publish("user:u1", "notification", {"i": i})
    events = await reader.wait(4)
    assert json.loads(events[0]["data"]) == {"channel": "user:u1", "seq": 0}
    assert [json.loads(e["data"])["seq"] for e in events[1:]] == [1, 2, 3]
    assert events[2]["id"] == "user:u1@2"
    await reader.close()
    for i in range(3, 5):
        await services.hub.publish("user:u1", "notification", {"i": i})
    reader2 = await EventStream().open(
        base_url, await ticket_for(http_client, base_url, token), ["user:u1"], last_event_id=events[2]["id"]
    )
    events2 = await reader2.wait(4)
    assert [json.loads(e["data"])["data"]["i"] for e in events2[1:]] == [2, 3, 4]
    await reader2.close()


@pytest.mark.gen_test
async def test_sse_tickets_are_single_use_and_checked(http_client, base_url, services):
    token = services.tokens.issue("u1", role="attendee")
    ticket = await ticket_for(http_client, base_url, token)
    reader = await EventStream().open(base_url, ticket, ["user:u1"])
    await reader.wait(1)
    await reader.close()
    resp = await http_client.fetch(f"{base_url}/sse?ticket={ticket}&channel=user:u1", raise_error=False)
    assert resp.code == 401 and json.loads(resp.body)["error"]["code"] == "ticket_invalid"
    assert "unknown or used" in json.loads(resp.body)["error"]["message"]
    # an expired ticket says so, and how late it came
    late = await ticket_for(http_client, base_url, token)
    expired = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    await services.db.sse_tickets.update_one({"_id": hashlib.sha256(late.encode()).hexdigest()},
                                             {"$set": {"expires": expired}})  # fmt: skip
    resp = await http_client.fetch(f"{base_url}/sse?ticket={late}&channel=user:u1", raise_error=False)
    error = json.loads(resp.body)["error"]
    assert (resp.code, error["code"]) == (401, "ticket_invalid") and "expired 30 s ago" in error["message"]
    other = await ticket_for(http_client, base_url, token)
    resp = await http_client.fetch(f"{base_url}/sse?ticket={other}&channel=user:u2", raise_error=False)
    assert resp.code == 403
    resp = await http_client.fetch(f"{base_url}/sse?ticket=x&channel=bogus", raise_error=False)
    assert resp.code == 422
    with pytest.raises(HTTPClientError) as err:
        await http_client.fetch(base_url + "/api/realtime/tickets", method="POST", body="")
    assert err.value.code == 401


@pytest.mark.gen_test
async def test_publish_api_with_api_key_and_host_token(http_client, base_url, services):
    url = base_url + "/api/channels/room:w1/messages"
    body = json.dumps({"type": "announcement", "data": {"text": "Starting in 5"}})
    resp = await http_client.fetch(url, method="POST", body=body, headers=auth(API_KEY))
    assert resp.code == 202 and json.loads(resp.body)["seq"] == 1
    host = services.tokens.issue("h1", role="host")
    resp = await http_client.fetch(url, method="POST", body=body, headers=auth(host))
    assert json.loads(resp.body)["seq"] == 2
    attendee = services.tokens.issue("a1", role="attendee", webinar="w1")
    resp = await http_client.fetch(url, method="POST", body=body, headers=auth(attendee), raise_error=False)
    assert resp.code == 403
    resp = await http_client.fetch(
        url, method="POST", body=body, headers=auth("wrong-key"), raise_error=False
    )
    assert resp.code == 401
    for bad, status in (
        ('{"type": {"$gt": ""}, "data": 1}', 422),
        ('{"type": "x"}', 422),
        ("[]", 400),
        ("{nope", 400),
        ('{"type": "presence", "data": 1}', 422),
        ('{"type": "x", "data": 1, "durable": "yes"}', 422),
    ):
        resp = await http_client.fetch(url, method="POST", body=bad, headers=auth(API_KEY), raise_error=False)
        assert resp.code == status, bad
        assert set(json.loads(resp.body)["error"]) >= {"code", "message"}
    resp = await http_client.fetch(base_url + "/api/channels/room:w1/history?since=1", headers=auth(attendee))
    history = json.loads(resp.body)
    assert [m["seq"] for m in history["messages"]] == [2]
    resp = await http_client.fetch(
        base_url + "/api/channels/room:w1/history?limit=0", headers=auth(attendee), raise_error=False
    )
    assert resp.code == 422


@pytest.mark.gen_test(timeout=30)
async def test_presence_counts_a_user_once_across_tabs(http_client, base_url, http_server, services):
    from tests.wsclient import WsClient

    ws = base_url.replace("http://", "ws://") + "/ws"
    tabs = [
        await WsClient.connect(ws, services.tokens.issue("ann", role="attendee", webinar="w1", name="Ann"))
        for _ in range(3)
    ]
    bob = await WsClient.connect(ws, services.tokens.issue("bob", role="attendee", webinar="w1", name="Bob"))
    for client in tabs + [bob]:
        await client.subscribe("room:w1")
    while (await bob.expect("presence"))["data"]["count"] != 2:
        pass
    resp = await http_client.fetch(base_url + "/api/channels/room:w1/presence", headers=auth(API_KEY))
    roster = json.loads(resp.body)
    assert roster["count"] == 2 and [u["name"] for u in roster["users"]] == ["Ann", "Bob"]
    tabs[0].close()
    tabs[1].close()
    await bob.send({"type": "ping"})
    await bob.expect("pong")
    resp = await http_client.fetch(base_url + "/api/channels/room:w1/presence", headers=auth(API_KEY))
    assert json.loads(resp.body)["count"] == 2
    tabs[2].close()
    while (update := await bob.expect("presence"))["data"]["count"] != 1:
        pass
    assert update["data"]["left"] == ["Ann"]
    bob.close()
