"""Webinars and registrations over REST: CRUD, lifecycle, capacity under concurrency, approval queue,
search and CSV, refusals (401/403/404/409) and bad input (400 unreadable, 422 invalid)."""

import asyncio
from datetime import datetime

import pytest

from tests.api import Api, future, join_token


@pytest.fixture
def services_env():
    # Fifty registrations from one address at once (the capacity race): past REGISTRATION_RATE's
    # default, whose own test is tests/handlers/test_rate_limits.py.
    return {"REGISTRATION_RATE": "0"}


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


@pytest.mark.gen_test
async def test_create_edit_reschedule_cancel(api, services, webinar_events):
    token = (await api.host())["access_token"]
    cohost = await api.host(name="Cora")
    w = await api.webinar(
        token,
        capacity=100,
        registration_mode="approval",
        stream_url="https://cdn.example.com/live.m3u8",
        cohosts=[cohost["user"]["email"]],
        description="All the news",
    )
    assert w["status"] == "scheduled" and w["timezone"] == "Europe/Berlin" and w["capacity"] == 100
    assert w["cohosts"] == [cohost["user"]["email"]]
    code, got = await api.call("GET", f"/api/webinars/{w['id']}")
    assert code == 200 and got["title"] == "Launch day"
    assert "cohosts" not in got and "owner_id" not in got  # the public page shows no host emails
    code, listed = await api.call("GET", "/api/webinars", token=cohost["access_token"])
    assert [x["id"] for x in listed["webinars"]] == [w["id"]]
    new_start = future(48)
    code, edited = await api.call(
        "PATCH", f"/api/webinars/{w['id']}", {"title": "Launch day 2", "starts_at": new_start}, token
    )
    assert code == 200 and edited["title"] == "Launch day 2"
    code, body = await api.call("PATCH", f"/api/webinars/{w['id']}", {"title": "x"}, cohost["access_token"])
    assert code == 403
    code, cancelled = await api.call("POST", f"/api/webinars/{w['id']}/cancel", token=token)
    assert code == 200 and cancelled["status"] == "cancelled"
    code, body = await api.call("POST", f"/api/webinars/{w['id']}/live", token=token)
    assert (code, body["error"]["code"]) == (409, "webinar_cancelled")
    code, body = await api.call(
        "POST", f"/api/webinars/{w['id']}/registrations", {"name": "Late", "email": "late@example.com"}
    )
    assert (code, body["error"]["code"]) == (409, "webinar_cancelled")
    fired = [(event, webinar.id, webinar.status) for event, webinar in webinar_events.seen]
    assert fired == [
        ("webinar_rescheduled", w["id"], "scheduled"),
        ("webinar_cancelled", w["id"], "cancelled"),
    ]
    rescheduled = webinar_events.of("webinar_rescheduled")[0][0]
    assert rescheduled.starts_at == datetime.fromisoformat(new_start) and rescheduled.title == "Launch day 2"


@pytest.mark.gen_test
async def test_lifecycle_and_wrong_state(api, services, webinar_events):
    token = (await api.host())["access_token"]
    w = await api.webinar(token)
    code, body = await api.call("POST", f"/api/webinars/{w['id']}/end", token=token)
    assert (code, body["error"]["code"]) == (409, "not_live")
    code, body = await api.call("POST", f"/api/webinars/{w['id']}/live", token=token)
    assert code == 200 and body["status"] == "live" and body["live_at"]
    code, body = await api.call("POST", f"/api/webinars/{w['id']}/live", token=token)
    assert (code, body["error"]["code"]) == (409, "already_live")
    code, body = await api.call("POST", f"/api/webinars/{w['id']}/end", token=token)
    assert code == 200 and body["status"] == "ended"
    code, body = await api.call("POST", f"/api/webinars/{w['id']}/end", token=token)
    assert (code, body["error"]["code"]) == (409, "webinar_ended")
    code, body = await api.call("PATCH", f"/api/webinars/{w['id']}", {"title": "Too late"}, token)
    assert (code, body["error"]["code"]) == (409, "webinar_ended")
    code, body = await api.call("POST", f"/api/webinars/{w['id']}/cancel", token=token)
    assert (code, body["error"]["code"]) == (409, "webinar_ended")
    late = {"name": "Late", "email": "late@example.com"}
    code, body = await api.call("POST", f"/api/webinars/{w['id']}/registrations", late)
    assert (code, body["error"]["code"]) == (409, "webinar_ended")
    assert [webinar.status for (webinar,) in webinar_events.of("webinar_live")] == ["live"]
    history = await services.hub.history.read(f"room:{w['id']}")
    assert [e.type for e in history] == ["webinar.live", "webinar.ended"]


@pytest.mark.gen_test
async def test_bad_input_and_unknown_ids(api):
    token = (await api.host())["access_token"]
    base = {"title": "T", "starts_at": future(), "timezone": "Europe/Berlin", "duration_minutes": 30}
    for bad in (
        {"title": {"$gt": ""}},
        {"title": "x" * 201},
        {"starts_at": "2030-01-01T10:00:00"},
        {"timezone": "Mars/Olympus"},
        {"duration_minutes": "60"},
        {"capacity": -1},
        {"registration_mode": "maybe"},
        {"stream_url": "javascript:alert(1)"},
        {"stream_url": "http://cdn.example/live.m3u8"},  # the pages' CSP would block it
        {"bogus": 1},
    ):
        code, body = await api.call("POST", "/api/webinars", {**base, **bad}, token)
        assert (code, body["error"]["code"]) == (422, "invalid"), bad
    # a well-formed co-host without a host account: the accounts' state refuses it, not the form
    code, body = await api.call("POST", "/api/webinars", {**base, "cohosts": ["nobody@example.com"]}, token)
    assert (code, body["error"]["code"]) == (409, "cohost_not_found")
    assert body["error"]["message"] == "cohosts: nobody@example.com has no host account"
    code, body = await api.call("POST", "/api/webinars", b"[1,2]", token)
    assert code == 400
    code, body = await api.call("GET", "/api/webinars/nonexistent0000")
    assert (code, body["error"]["code"]) == (404, "not_found")
    code, body = await api.call(
        "POST", "/api/webinars/nonexistent0000/registrations", {"name": "A", "email": "a@example.com"}
    )
    assert code == 404
    w = await api.webinar(token)
    code, body = await api.call(
        "POST", f"/api/webinars/{w['id']}/registrations", {"name": "A", "email": {"$ne": None}}
    )
    assert (code, body["error"]["code"]) == (422, "invalid")
    code, body = await api.call("POST", f"/api/webinars/{w['id']}/registrations/nope/approve", token=token)
    assert code == 404


@pytest.mark.parametrize("services_env", [{"REGISTRATION_RATE": "0"}])  # 50 sign-ups from one address
@pytest.mark.gen_test(timeout=60)
async def test_capacity_race_fifty_for_ten_seats(api, services_env):
    token = (await api.host())["access_token"]
    w = await api.webinar(token, capacity=10)
    path = f"/api/webinars/{w['id']}/registrations"
    results = await asyncio.gather(
        *[api.call("POST", path, {"name": f"P{i}", "email": f"p{i}@example.com"}) for i in range(50)]
    )
    codes = [c for c, _ in results]
    assert codes.count(201) == 10
    assert {b["error"]["code"] for c, b in results if c != 201} == {"webinar_full"}
    code, listed = await api.call("GET", path, token=token)
    assert len(listed["registrations"]) == 10
    code, got = await api.call("GET", f"/api/webinars/{w['id']}")
    assert got["seats_taken"] == 10


@pytest.mark.gen_test
async def test_one_registration_per_email_and_cancel(api, services):
    token = (await api.host())["access_token"]
    w = await api.webinar(token, capacity=1)
    reg = await api.register(w["id"], email="Same@Example.com")
    assert reg["status"] == "approved" and "#token=" in reg["join_url"]
    assert reg["join_url"].startswith(services.settings.base_url + f"/join/{w['id']}#token=")
    fresh = await services.domain.webinars.fresh_join_url(w["id"], reg["id"])
    assert services.tokens.verify(join_token({"join_url": fresh})).webinar == w["id"]
    path = f"/api/webinars/{w['id']}/registrations"
    code, body = await api.call("POST", path, {"name": "Again", "email": "same@example.com"})
    assert (code, body["error"]["code"]) == (409, "webinar_full")
    # the registrant cancels with their own join token; the seat comes back
    code, body = await api.call("DELETE", f"{path}/{reg['id']}", token=join_token(reg))
    assert code == 200 and body["status"] == "cancelled"
    again = await api.register(w["id"], email="same@example.com")
    assert again["status"] == "approved"
    code, body = await api.call("POST", path, {"name": "Again", "email": "same@example.com"})
    assert (code, body["error"]["code"]) == (409, "webinar_full")
    w2 = await api.webinar(token)
    await api.register(w2["id"], email="dup@example.com")
    code, body = await api.call(
        "POST", f"/api/webinars/{w2['id']}/registrations", {"name": "Dup", "email": "dup@example.com"}
    )
    assert (code, body["error"]["code"]) == (409, "already_registered")


@pytest.mark.gen_test
async def test_approval_queue_search_and_csv(api, services, webinar_events):
    token = (await api.host())["access_token"]
    w = await api.webinar(token, registration_mode="approval", capacity=5)
    a = await api.register(w["id"], name="Alice", email="alice@example.com")
    b = await api.register(w["id"], name="=Bob", email="bob@example.com")
    assert a["status"] == "pending" and "join_url" not in a
    base = f"/api/webinars/{w['id']}/registrations"
    code, body = await api.call("POST", f"{base}/{a['id']}/approve", token=token)
    assert code == 200 and body["status"] == "approved" and body["join_url"]
    a = body
    code, body = await api.call("POST", f"{base}/{b['id']}/reject", token=token)
    assert body["status"] == "rejected"
    code, body = await api.call("POST", f"{base}/{b['id']}/approve", token=token)
    assert (code, body["error"]["code"]) == (409, "not_pending")
    # an attendee cannot run the queue
    code, body = await api.call("POST", f"{base}/{b['id']}/approve", token=join_token(a))
    assert code == 403
    code, body = await api.call("GET", f"{base}?q=ALI", token=token)
    assert [r["email"] for r in body["registrations"]] == ["alice@example.com"]
    code, body = await api.call("GET", f"{base}?status=rejected", token=token)
    assert [r["email"] for r in body["registrations"]] == ["bob@example.com"]
    code, body = await api.call("GET", f"{base}?q=.*", token=token)
    assert body["registrations"] == []
    code, text = await api.call("GET", f"{base}.csv", token=token, raw=True)
    assert code == 200
    lines = text.strip().splitlines()
    assert lines[0] == "name,email,status,created_at"
    assert lines[2].startswith("'=Bob,bob@example.com,rejected")
    code, body = await api.call("GET", base, token=join_token(a))
    assert code == 403
    seen = [(event, reg.email, reg.status) for event, _, reg in webinar_events.seen]
    assert seen == [
        ("registration_received", "alice@example.com", "pending"),
        ("registration_received", "bob@example.com", "pending"),
        ("registration_decided", "alice@example.com", "approved"),
        ("registration_decided", "bob@example.com", "rejected"),
    ]
    webinar, reg = webinar_events.of("registration_decided")[0]
    assert (webinar.id, reg.id, reg.webinar_id, reg.name) == (w["id"], a["id"], w["id"], "Alice")
