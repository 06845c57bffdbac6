"""A webinar cannot be scheduled, or moved, to a start that has passed."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.api import Api


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


def ago(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


@pytest.mark.gen_test(timeout=60)
async def test_a_start_in_the_past_is_refused_with_the_field_named(api):
    token = (await api.host())["access_token"]
    body = {"title": "Yesterday", "starts_at": ago(24 * 60), "timezone": "UTC", "duration_minutes": 30}
    code, answer = await api.call("POST", "/api/webinars", body, token)
    assert code == 409 and answer["error"]["code"] == "starts_in_the_past"
    assert answer["error"]["message"].startswith("starts_at:")
    code, _ = await api.call("POST", "/api/webinars", {**body, "starts_at": ago(1)}, token)
    assert code == 201  # "now", typed a minute ago
    w = await api.webinar(token)
    code, answer = await api.call("PATCH", f"/api/webinars/{w['id']}", {"starts_at": ago(60)}, token)
    assert (code, answer["error"]["code"]) == (409, "starts_in_the_past")
    # an unchanged start may have passed (a webinar running late is edited while live)
    await api.call("POST", f"/api/webinars/{w['id']}/live", token=token)
    code, _ = await api.call(
        "PATCH", f"/api/webinars/{w['id']}", {"starts_at": w["starts_at"], "title": "x"}, token
    )
    assert code == 200
