"""The webinar events: every action tells its listeners with records, and a failing listener is logged
without failing the action or keeping the event from the listeners after it."""

import logging

import pytest

from tests.api import Api, future, join_token


class Exploding:
    """A listener whose every handler raises."""

    async def _fail(self, *records):
        raise RuntimeError("listener bug")

    registration_received = registration_decided = _fail
    webinar_live = webinar_rescheduled = webinar_cancelled = _fail
    announcement_made = question_answered = _fail


@pytest.fixture
def services(io_loop, make_settings, webinar_events):
    from server import open_services

    svc = io_loop.run_sync(lambda: open_services(make_settings(), listeners=[Exploding(), webinar_events]))
    yield svc
    io_loop.run_sync(svc.close)


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


@pytest.mark.gen_test(timeout=30)
async def test_every_action_succeeds_and_reaches_later_listeners_when_one_fails(
    api, services, webinar_events, caplog
):
    caplog.set_level(logging.ERROR, logger="realtime.webinars.events")
    host = (await api.host())["access_token"]
    w = await api.webinar(host, registration_mode="approval")
    wid = w["id"]
    reg = await api.register(wid, name="Ada", email="ada@example.com")
    code, reg = await api.call("POST", f"/api/webinars/{wid}/registrations/{reg['id']}/approve", token=host)
    assert code == 200 and reg["status"] == "approved"
    new_start = future(hours=5)
    code, _ = await api.call("PATCH", f"/api/webinars/{wid}", {"starts_at": new_start}, host)
    assert code == 200
    code, _ = await api.call("POST", f"/api/webinars/{wid}/live", token=host)
    assert code == 200
    code, _ = await api.call("POST", f"/api/webinars/{wid}/announcements", {"text": "Slides"}, host)
    assert code == 201
    code, q = await api.call("POST", f"/api/webinars/{wid}/questions", {"text": "When?"}, join_token(reg))
    assert code == 201
    code, _ = await api.call("POST", f"/api/webinars/{wid}/questions/{q['id']}/answer", {}, host)
    assert code == 200
    other = await api.webinar(host)
    code, _ = await api.call("POST", f"/api/webinars/{other['id']}/cancel", token=host)
    assert code == 200

    events = [entry[0] for entry in webinar_events.seen]
    assert events == [
        "registration_received",
        "registration_decided",
        "webinar_rescheduled",
        "webinar_live",
        "announcement_made",
        "question_answered",
        "webinar_cancelled",
    ]
    failures = [r for r in caplog.records if r.name == "realtime.webinars.events"]
    assert [r.getMessage() for r in failures] == [f"webinar event {e}: Exploding failed" for e in events]
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in failures)

    # the records: typed values from the stored documents, not the API's JSON
    [(webinar, registration)] = webinar_events.of("registration_decided")
    assert (webinar.id, webinar.title, registration.user_id) == (wid, "Launch day", reg["user_id"])
    [(moved,)] = webinar_events.of("webinar_rescheduled")
    assert moved.starts_at.isoformat() == new_start
    [(_, question)] = webinar_events.of("question_answered")
    assert (question.id, question.user_id, question.answer) == (q["id"], reg["user_id"], None)
    # the notification side still acted (it listens before the failing listener)
    assert await services.db.jobs.count_documents({"payload.key": f"live:{wid}"}) == 1
