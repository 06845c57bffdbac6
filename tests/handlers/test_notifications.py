"""The notification API and live delivery on one server (memory broker, real hub, real database)."""

import datetime as dt
import json

import pytest

from tests.waiting import wait_until
from tests.wsclient import WsClient

API_KEY = "integrator-key-0123456789abcdef0123456789"


@pytest.fixture
def services_env():
    return {"API_KEYS": f"crm:{API_KEY}", "WORKER_POLL_INTERVAL": "0.05"}


async def open_tab(base_url, token):
    return await WsClient.connect(base_url + "/ws", token)


async def quiet(tab, type_, timeout=0.3):
    """True when no message of ``type_`` arrives within ``timeout`` (a check for duplicates)."""
    try:
        await tab.expect(type_, timeout)
    except TimeoutError:
        return True
    return False


class Api:
    def __init__(self, http_client, base_url, services):
        self.http = http_client
        self.base = base_url
        self.services = services

    def token(self, user, role="attendee"):
        return self.services.tokens.issue(user, role=role, name=user)

    async def call(self, method, path, *, user=None, key=None, body=None, headers=None):
        hdrs = dict(headers or {})
        if user is not None:
            hdrs["Authorization"] = f"Bearer {self.token(user)}"
        if key is not None:
            hdrs["Authorization"] = f"Bearer {key}"
        kwargs = {"method": method, "headers": hdrs, "raise_error": False}
        if body is not None:
            kwargs["body"] = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        elif method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = b""
        elif method == "DELETE":
            kwargs["allow_nonstandard_methods"] = True
        resp = await self.http.fetch(self.base + path, **kwargs)
        return resp.code, (json.loads(resp.body) if resp.body else None)

    async def send(self, user_ids, title="Hello", category="general", **extra):
        body = {"user_ids": user_ids, "title": title, "body": "b", "url": "/x", "category": category, **extra}
        return await self.call("POST", "/api/notifications", key=API_KEY, body=body)


@pytest.fixture
def api(http_client, base_url, services):
    return Api(http_client, base_url, services)


@pytest.mark.gen_test(timeout=30)
async def test_inbox_pages_counts_and_read_state(api):
    for n in range(5):
        assert await api.send(["ann"], title=f"n{n}") == (201, {"created": 1})
    code, page = await api.call("GET", "/api/notifications?limit=2", user="ann")
    assert code == 200 and [i["title"] for i in page["items"]] == ["n4", "n3"] and page["unread"] == 5
    code, page2 = await api.call(
        "GET", f"/api/notifications?limit=2&cursor={page['next_cursor']}", user="ann"
    )
    assert [i["title"] for i in page2["items"]] == ["n2", "n1"]
    code, page3 = await api.call(
        "GET", f"/api/notifications?limit=2&cursor={page2['next_cursor']}", user="ann"
    )
    assert [i["title"] for i in page3["items"]] == ["n0"] and page3["next_cursor"] is None

    first = page["items"][0]["id"]
    code, out = await api.call("POST", f"/api/notifications/{first}/read", user="ann")
    assert code == 200 and out["item"]["read"] and out["unread"] == 4
    assert (await api.call("GET", "/api/notifications/unread-count", user="ann"))[1] == {"unread": 4}
    code, out = await api.call("POST", f"/api/notifications/{first}/unread", user="ann")
    assert out["unread"] == 5
    code, out = await api.call("POST", f"/api/notifications/{first}/archive", user="ann")
    assert out["item"]["archived"] and out["unread"] == 4
    code, archived = await api.call("GET", "/api/notifications?filter=archived", user="ann")
    assert [i["id"] for i in archived["items"]] == [first]
    code, unread = await api.call("GET", "/api/notifications?filter=unread", user="ann")
    assert len(unread["items"]) == 4
    assert (await api.call("POST", "/api/notifications/read-all", user="ann"))[1] == {
        "changed": 4,
        "unread": 0,
    }

    # Someone else's item, bad input, no token.
    assert (await api.call("POST", f"/api/notifications/{first}/read", user="bob"))[0] == 404
    assert (await api.call("GET", "/api/notifications?filter=nope", user="ann"))[0] == 422
    assert (await api.call("GET", "/api/notifications?cursor=zz", user="ann"))[1]["error"][
        "code"
    ] == "invalid_cursor"
    code, err = await api.call("GET", "/api/notifications")
    assert code == 401 and err["error"]["code"] == "unauthorized"


@pytest.mark.gen_test(timeout=30)
async def test_integrator_api_auth_idempotency_and_validation(api):
    assert (await api.call("POST", "/api/notifications", key="wrong", body={}))[0] == 401
    # Attendees may not send; hosts may not address arbitrary users.
    code, _ = await api.call("POST", "/api/notifications", user="ann", body={"user_ids": ["x"], "title": "t"})
    assert code == 403
    assert (await api.send(["a"], category="spam"))[0] == 422
    assert (await api.send([], title="t"))[0] == 422
    code, out = await api.send(["a", "b"])
    assert (code, out) == (201, {"created": 2})
    hdr = {"Idempotency-Key": "order-42"}
    key_body = {"user_ids": ["a"], "title": "once"}
    assert (await api.call("POST", "/api/notifications", key=API_KEY, body=key_body, headers=hdr))[1] == {
        "created": 1
    }
    assert (await api.call("POST", "/api/notifications", key=API_KEY, body=key_body, headers=hdr))[1] == {
        "created": 0
    }


@pytest.mark.gen_test(timeout=30)
async def test_offline_user_gets_inbox_item_and_live_message_once_on_reconnect(api, base_url):
    tab = await open_tab(base_url, api.token("olga"))
    sub = await tab.subscribe("user:olga")
    position = sub["seq"]
    tab.close()  # offline: the browser is closed
    assert (await api.send(["olga"], title="While you were away"))[0] == 201
    code, page = await api.call("GET", "/api/notifications", user="olga")
    assert [i["title"] for i in page["items"]] == ["While you were away"]

    tab = await open_tab(base_url, api.token("olga"))
    await tab.subscribe("user:olga", since=position)
    msg = await tab.expect("notification")
    assert msg["data"]["title"] == "While you were away" and msg["data"]["unread"] == 1
    assert msg["data"]["id"] == page["items"][0]["id"]
    assert await quiet(tab, "notification")  # once, not twice
    tab.close()


@pytest.mark.gen_test(timeout=30)
async def test_tabs_see_live_items_and_unread_cleared_by_another_tab(api, base_url):
    tabs = [await open_tab(base_url, api.token("tia")) for _ in range(3)]
    for tab in tabs:
        await tab.subscribe("user:tia")
    await api.send(["tia"], title="Live")
    items = [await tab.expect("notification") for tab in tabs]
    assert {m["data"]["title"] for m in items} == {"Live"} and items[0]["data"]["unread"] == 1
    await tabs[0].send({"type": "ping"})  # any tab reads it through the API
    code, _ = await api.call("POST", f"/api/notifications/{items[0]['data']['id']}/read", user="tia")
    assert code == 200
    for tab in tabs:
        update = await tab.expect("notification.unread")
        assert update["data"]["unread"] == 0 and update["data"]["changed"]["read"] is True
    for tab in tabs:
        tab.close()


@pytest.mark.gen_test(timeout=30)
async def test_preferences_and_mutes(api, services):
    code, prefs = await api.call("GET", "/api/notifications/preferences", user="pat")
    defaults = {"in_app": True, "push": True, "email": True}
    assert prefs["categories"]["reminder"] == defaults and prefs["muted_webinars"] == []
    body = {"categories": {"announcement": {"in_app": False}}}
    code, prefs = await api.call("PATCH", "/api/notifications/preferences", user="pat", body=body)
    assert code == 200 and prefs["categories"]["announcement"] == {**defaults, "in_app": False}
    bad = {"categories": {"announcement": {"fax": True}}}
    assert (await api.call("PATCH", "/api/notifications/preferences", user="pat", body=bad))[0] == 422
    code, prefs = await api.call("PUT", "/api/notifications/mutes/w1", user="pat")
    assert prefs["muted_webinars"] == ["w1"]

    notifier = services.notifications.notifier
    assert await notifier.notify(["pat"], "announcement", "t", "b", "/") == 0
    assert await notifier.notify(["pat"], "qa", "t", "b", "/", webinar_id="w1") == 0
    assert await notifier.notify(["pat"], "qa", "t", "b", "/", webinar_id="w2") == 1
    await api.call("DELETE", "/api/notifications/mutes/w1", user="pat")
    assert await notifier.notify(["pat"], "qa", "t", "b", "/", webinar_id="w1") == 1


async def seed_webinar(db, wid, registrants, *, starts_in=dt.timedelta(days=2), host="host1"):
    starts = dt.datetime.now(dt.UTC).replace(microsecond=0) + starts_in
    webinar = {"_id": wid, "title": "Launch", "starts_at": starts, "status": "scheduled", "host_id": host}
    await db.webinars.insert_one(webinar)
    regs = [
        {
            "_id": f"{wid}-r{n}",
            "webinar_id": wid,
            "user_id": u,
            "email": f"{u}@x",
            "name": u,
            "status": "approved",
        }
        for n, u in enumerate(registrants)
    ]
    if regs:
        await db.registrations.insert_many(regs)
    return webinar


@pytest.mark.gen_test(timeout=30)
async def test_webinar_fanout_recording_and_job_status(api, services):
    db = services.db
    await seed_webinar(db, "w9", ["r1", "r2", "r3"])
    await db.registrations.insert_one(
        {"_id": "p", "webinar_id": "w9", "user_id": "r4", "email": "r4@x", "status": "pending"}
    )
    body = {"webinar_id": "w9", "title": "Slides are up", "category": "announcement"}
    code, out = await api.call("POST", "/api/notifications", key=API_KEY, body=body)
    assert code == 202

    async def finished():
        code, job = await api.call("GET", f"/api/notification-jobs/{out['job_id']}", key=API_KEY)
        return job if job["status"] == "done" else None

    job = await wait_until(finished)
    assert job["result"] == {"recipients": 3, "created": 3}
    assert await db.notifications.count_documents({"user_id": "r4"}) == 0

    rec = {"url": "https://cdn.example/rec.mp4"}
    assert (await api.call("POST", "/api/webinars/nope/recording", key=API_KEY, body=rec))[0] == 404
    code, err = await api.call("POST", "/api/webinars/w9/recording", user="r1", body=rec)
    assert code == 403
    code, out = await api.call("POST", "/api/webinars/w9/recording", key=API_KEY, body=rec)
    assert code == 202 and out["recording_url"] == rec["url"]
    assert (await db.webinars.find_one({"_id": "w9"}))["recording_url"] == rec["url"]

    async def recorded():
        return await db.notifications.count_documents({"category": "recording"}) == 3

    await wait_until(recorded)
    item = await db.notifications.find_one({"user_id": "r2", "category": "recording"})
    assert item["url"] == rec["url"]
