"""The webinar actions notify through the webinar events: registration, reminders, live, announcement,
answered question, reschedule and cancel, over the real REST API."""

import asyncio
import time

import pytest

from tests.api import Api, future, join_token
from tests.wsclient import WsClient


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


async def inbox(api, token, **query):
    code, page = await api.call("GET", "/api/notifications?limit=100", token=token)
    assert code == 200
    return page["items"]


async def eventually(check, timeout=15.0):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


@pytest.mark.gen_test(timeout=60)
async def test_webinar_actions_notify_registrants(api, services, base_url):
    host = (await api.host())["access_token"]
    w = await api.webinar(host, starts_at=future(hours=48))
    reg = await api.register(w["id"], name="Ada")
    ada = join_token(reg)
    tab = await WsClient.connect(base_url + "/ws", ada)
    await tab.subscribe(f"user:{reg['user_id']}", since=0)  # registered before the tab opened
    confirmed = await tab.expect("notification")
    assert confirmed["data"]["category"] == "registration" and confirmed["data"]["webinar_id"] == w["id"]

    reminders = await services.db.jobs.find({"kind": "reminder", "payload.webinar_id": w["id"]}).to_list()
    assert sorted(j["payload"]["offset"] for j in reminders) == [15, 1440]

    code, _ = await api.call("POST", f"/api/webinars/{w['id']}/live", token=host)
    assert code == 200
    live = await tab.expect("notification")
    assert live["data"]["category"] == "live"

    code, _ = await api.call(
        "POST", f"/api/webinars/{w['id']}/announcements", {"text": "Slides posted"}, host
    )
    assert code == 201
    note = await tab.expect("notification")
    assert note["data"]["category"] == "announcement" and note["data"]["body"] == "Slides posted"

    code, q = await api.call(
        "POST", f"/api/webinars/{w['id']}/questions", {"text": "Will it be recorded?"}, ada
    )
    assert code == 201, q
    path = f"/api/webinars/{w['id']}/questions/{q['id']}/answer"
    code, _ = await api.call("POST", path, {"answer": "Yes"}, host)
    assert code == 200
    answered = await tab.expect("notification")
    assert answered["data"]["category"] == "qa"

    code, out = await api.call(
        "POST", f"/api/webinars/{w['id']}/recording", {"url": "https://cdn.example.com/r.mp4"}, host
    )
    assert code == 202
    rec = await tab.expect("notification")
    assert rec["data"]["category"] == "recording" and rec["data"]["url"] == "https://cdn.example.com/r.mp4"
    items = await inbox(api, ada)
    assert [i["category"] for i in items] == ["recording", "qa", "announcement", "live", "registration"]
    tab.close()


@pytest.mark.gen_test(timeout=60)
async def test_reschedule_and_cancel_move_and_drop_reminders(api, services):
    host = (await api.host())["access_token"]
    w = await api.webinar(host, starts_at=future(hours=48))
    reg = await api.register(w["id"], name="Bea")
    jobs = services.db.jobs
    before = {j["run_at"] for j in await jobs.find({"kind": "reminder", "status": "queued"}).to_list()}
    code, _ = await api.call("PATCH", f"/api/webinars/{w['id']}", {"starts_at": future(hours=72)}, host)
    assert code == 200
    after = {j["run_at"] for j in await jobs.find({"kind": "reminder", "status": "queued"}).to_list()}
    assert len(after) == 2 and not before & after

    async def told():
        items = await inbox(api, join_token(reg))
        return [i for i in items if "rescheduled" in i["title"]]

    assert await eventually(told)
    code, _ = await api.call("POST", f"/api/webinars/{w['id']}/cancel", token=host)
    assert code == 200
    assert await jobs.count_documents({"kind": "reminder", "status": "queued"}) == 0


@pytest.mark.gen_test(timeout=60)
async def test_announcement_notifies_only_registrants_not_in_the_room(api, services, base_url):
    host = (await api.host())["access_token"]
    w = await api.webinar(host, starts_at=future(hours=48))
    away = await api.register(w["id"], name="Ada")
    here = await api.register(w["id"], name="Bob")
    code, _ = await api.call("POST", f"/api/webinars/{w['id']}/live", token=host)
    assert code == 200
    bob = await WsClient.connect(base_url + "/ws", join_token(here))
    await bob.subscribe(f"room:{w['id']}")
    code, _ = await api.call("POST", f"/api/webinars/{w['id']}/announcements", {"text": "Q&A next"}, host)
    assert code == 201
    await bob.expect("announcement")  # Bob saw it live in the room

    async def ada_notified():
        return [i for i in await inbox(api, join_token(away)) if i["category"] == "announcement"]

    assert len(await eventually(ada_notified)) == 1
    job = await services.db.jobs.find_one({"key": {"$regex": "^fanout:announcement:"}})
    assert job is not None and job["payload"]["user_ids"] == [away["user_id"]]
    assert [i["category"] for i in await inbox(api, join_token(here))] == ["live", "registration"]
    bob.close()
