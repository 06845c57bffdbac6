"""The end of a webinar: the host's call to action on the webinar, and attendees' ratings in the reports."""

import pytest

from tests.api import Api, join_token


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


@pytest.mark.gen_test(timeout=60)
async def test_call_to_action_is_a_validated_webinar_field(api):
    token = (await api.host())["access_token"]
    wid = (await api.webinar(token))["id"]
    for bad in ("javascript:alert(1)", "example.com/offer", "https://", 7):
        code, body = await api.call("PATCH", f"/api/webinars/{wid}", {"cta_url": bad}, token)
        assert code == 422 and body["error"]["code"] == "invalid", bad
    code, body = await api.call("PATCH", f"/api/webinars/{wid}", {"cta_label": "x" * 61}, token)
    assert code == 422
    offer = {"cta_url": "https://example.com/offer?from=webinar", "cta_label": "Get the slides"}
    code, body = await api.call("PATCH", f"/api/webinars/{wid}", offer, token)
    assert code == 200 and (body["cta_url"], body["cta_label"]) == (offer["cta_url"], "Get the slides")
    code, public = await api.call("GET", f"/api/webinars/{wid}")
    assert (public["cta_url"], public["cta_label"], public["recording_url"]) == (*offer.values(), "")
    code, body = await api.call("PATCH", f"/api/webinars/{wid}", {"cta_url": ""}, token)
    assert code == 200 and body["cta_url"] == ""


@pytest.mark.gen_test(timeout=60)
async def test_one_rating_per_attendee_lands_in_the_reports(api):
    token = (await api.host())["access_token"]
    wid = (await api.webinar(token))["id"]
    ada = join_token(await api.register(wid, name="Ada"))
    bo = join_token(await api.register(wid, name="Bo"))
    code, body = await api.call("POST", f"/api/webinars/{wid}/feedback", {"rating": 5}, ada)
    assert (code, body["error"]["code"]) == (409, "not_live")
    await api.call("POST", f"/api/webinars/{wid}/live", token=token)
    await api.call("POST", f"/api/webinars/{wid}/end", token=token)

    for bad in ({"rating": 0}, {"rating": 6}, {"rating": "5"}, {"rating": 4, "comment": "x" * 1001}, {}):
        code, body = await api.call("POST", f"/api/webinars/{wid}/feedback", bad, ada)
        assert code == 422 and body["error"]["code"] == "invalid", bad
    code, body = await api.call("GET", f"/api/webinars/{wid}/feedback", token=ada)
    assert code == 200 and body == {"rating": None}
    code, body = await api.call(
        "POST", f"/api/webinars/{wid}/feedback", {"rating": 4, "comment": " <b>Great</b> demo "}, ada
    )
    assert code == 201 and (body["rating"], body["comment"]) == (4, "<b>Great</b> demo")
    code, body = await api.call("POST", f"/api/webinars/{wid}/feedback", {"rating": 1}, ada)
    assert (code, body["error"]["code"]) == (409, "already_rated")
    code, body = await api.call("GET", f"/api/webinars/{wid}/feedback", token=ada)
    assert body["rating"]["rating"] == 4
    assert (await api.call("POST", f"/api/webinars/{wid}/feedback", {"rating": 2}, bo))[0] == 201
    code, body = await api.call("POST", f"/api/webinars/{wid}/feedback", {"rating": 5}, token)
    assert (code, body["error"]["code"]) == (403, "forbidden")  # hosts do not rate themselves

    code, report = await api.call("GET", f"/api/webinars/{wid}/reports/feedback", token=token)
    assert code == 200 and (report["count"], report["average"]) == (2, 3.0)
    assert [(r["name"], r["rating"], r["comment"]) for r in report["ratings"]] == [
        ("Ada", 4, "<b>Great</b> demo"),
        ("Bo", 2, ""),
    ]
    code, body = await api.call("GET", f"/api/webinars/{wid}/reports/feedback", token=ada)
    assert code == 403
