"""An SSE stream is a live session like a WebSocket: presence, attendance, logout and token expiry
end it; it writes through the bounded outbox, framed for HTTP/1.1 and HTTP/1.0 alike."""

from __future__ import annotations

import json
import socket

import pytest

from tests.api import Api
from tests.slowreader import overrun
from tests.sseclient import EventStream, ticket_for
from tests.wsclient import WsClient, settled

API_KEY = "integrator-key-0123456789abcdef0123456789"
OUTBOX = 64 * 1024


@pytest.fixture
def services_env():
    return {"API_KEYS": f"crm:{API_KEY}", "PRESENCE_INTERVAL": "0.1", "WS_OUTBOX_BYTES": str(OUTBOX)}


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


async def stream(http_client, base_url, token, channels, **kw) -> EventStream:
    reader = await EventStream().open(
        base_url, await ticket_for(http_client, base_url, token), channels, **kw
    )
    assert reader.status == 200, reader.error
    return reader


@pytest.mark.parametrize("version", ["1.1", "1.0"])
@pytest.mark.gen_test(timeout=30)
async def test_a_stream_parses_to_its_end_over_http_1_1_chunks_and_http_1_0(
    http_client, base_url, services, version
):
    token = services.tokens.issue("u1", role="attendee")
    reader = await stream(http_client, base_url, token, ["user:u1"], version=version)
    assert reader.chunked is (version == "1.1")
    await reader.event("subscribed")
    await services.hub.publish("user:u1", "notification", {"text": "ä" * 300})
    await services.hub.publish("user:u1", "typing", {"on": True}, durable=False)
    await services.hub.publish("user:u1", "notification", {"text": "two"})
    await reader.wait(4)
    await services.hub.kick("*", "u1", 4003, "banned")
    events = await reader.end()  # the last chunk (1.1) or the end of the connection (1.0)
    assert [e.get("event") for e in events] == ["subscribed", None, None, None, "kicked"]
    assert [(m["type"], m.get("seq")) for m in reader.data()] == [
        ("notification", 1),
        ("typing", None),
        ("notification", 2),
    ]
    assert reader.data()[0]["data"]["text"] == "ä" * 300
    assert [e.get("id") for e in events[1:4]] == ["user:u1@1", None, "user:u1@2"]
    assert json.loads(events[-1]["data"]) == {"code": 4003, "reason": "banned"}
    await reader.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_sse_viewer_is_in_the_rooms_presence(http_client, base_url, services):
    bob = await WsClient.connect(
        base_url, services.tokens.issue("bob", role="attendee", webinar="w1", name="Bob")
    )
    await bob.subscribe("room:w1")
    ann = services.tokens.issue("ann", role="attendee", webinar="w1", name="Ann")
    viewer = await stream(http_client, base_url, ann, ["room:w1"])
    while (await bob.expect("presence"))["data"]["count"] != 2:
        pass
    resp = await http_client.fetch(
        base_url + "/api/channels/room:w1/presence", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    roster = json.loads(resp.body)
    assert roster["count"] == 2 and [u["name"] for u in roster["users"]] == ["Ann", "Bob"]
    await viewer.close()
    while (update := await bob.expect("presence"))["data"]["count"] != 1:
        pass
    assert update["data"]["left"] == ["Ann"]
    bob.close()
    await settled(services)


@pytest.mark.gen_test(timeout=30)
async def test_an_sse_viewer_counts_in_attendance_and_gets_the_room_snapshot(
    api, http_client, base_url, services
):
    host, guest, w = await api.live_webinar()
    viewer = await stream(http_client, base_url, guest, [f"room:{w['id']}"])
    subscribed = await viewer.event("subscribed")
    code, body = await api.call("GET", f"/api/webinars/{w['id']}/reports/attendance", token=host)
    (row,) = body["attendance"]
    assert row["present_live"] is True and row["joined_at"] and row["left_at"] is None
    assert subscribed["state"]["webinar"]["id"] == w["id"]  # the late joiner's snapshot, as on /ws
    await viewer.close()
    await settled(services)
    code, body = await api.call("GET", f"/api/webinars/{w['id']}/reports/attendance", token=host)
    assert body["attendance"][0]["left_at"]


@pytest.mark.gen_test(timeout=30)
async def test_logout_ends_the_sse_streams_of_that_token_only(api, http_client, base_url, services):
    host = await api.host()
    user = host["user"]["id"]
    login = {"email": host["user"]["email"], "password": "correct horse battery"}
    other = (await api.call("POST", "/api/auth/login", login))[1]["access_token"]
    ended = await stream(http_client, base_url, host["access_token"], [f"user:{user}"])
    kept = await stream(http_client, base_url, other, [f"user:{user}"])
    await ended.event("subscribed")
    await kept.event("subscribed")
    code, _ = await api.call("POST", "/api/auth/logout", None, host["access_token"])
    assert code == 204
    events = await ended.end()
    assert json.loads(events[-1]["data"])["code"] == 4003
    await services.hub.publish(f"user:{user}", "notification", {"text": "still here"})
    await kept.wait(2)
    assert kept.data()[0]["data"] == {"text": "still here"}
    await ended.close()
    await kept.close()
    await settled(services)


@pytest.mark.gen_test(timeout=30)
async def test_token_expiry_ends_the_sse_stream(http_client, base_url, services):
    # Long enough to get a ticket and open the stream; the test then only awaits the end.
    token = services.tokens.issue("u1", role="attendee", ttl=5)
    reader = await stream(http_client, base_url, token, ["user:u1"])
    events = await reader.end(timeout=20)
    assert [e.get("event") for e in events] == ["subscribed", "token_expired", "kicked"]
    assert json.loads(events[-1]["data"])["code"] == 4010
    await reader.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_slow_sse_reader_is_bounded_by_the_outbox_then_ended(http_client, base_url, services):
    """A reader that stops reading: ephemeral events are dropped first, the queue stays within
    WS_OUTBOX_BYTES, and a durable event that does not fit ends the stream (4008 on /ws); what was
    sent is still a correctly framed response up to its last chunk."""
    token = services.tokens.issue("slow", role="attendee")
    reader = await stream(http_client, base_url, token, ["user:slow"], receive_buffer=4096, read=False)
    session = next(c for c in services.hub.connections if c.user_id == "slow")
    server_socket = session.transport.request.connection.stream.socket
    server_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    assert await overrun(services.hub, session, "user:slow", "x" * 16_000) <= OUTBOX
    reader.read()
    events = await reader.end(timeout=30)
    durable = [m["seq"] for m in reader.data() if "seq" in m]
    assert durable == list(range(1, len(durable) + 1))  # in order, no gap, up to where it ended
    assert events[0]["event"] == "subscribed"
    await reader.close()
    await settled(services)
