"""GET /api/webinars/{id}/moderation: who is muted or banned now, for the hosts only."""

import pytest

from tests.api import Api


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


@pytest.mark.gen_test
async def test_the_hosts_see_who_is_muted_or_banned_and_attendees_do_not(api, services):
    token, guest, w = await api.live_webinar()
    wid = w["id"]
    path = f"/api/webinars/{wid}/moderation"
    code, body = await api.call("GET", path, token=token)
    assert (code, body) == (200, {"users": []})
    user_id = services.tokens.verify(guest).user_id
    for action in ("mute", "ban"):
        code, _ = await api.call("POST", path, {"user_id": user_id, "action": action}, token)
        assert code == 200
    code, body = await api.call("GET", path, token=token)
    assert body == {"users": [{"user_id": user_id, "muted": True, "banned": True}]}
    code, body = await api.call("GET", path, token=guest)
    assert (code, body["error"]["code"]) == (403, "forbidden")
    for action in ("unmute", "unban"):
        code, _ = await api.call("POST", path, {"user_id": user_id, "action": action}, token)
        assert code == 200
    code, body = await api.call("GET", path, token=token)
    assert body == {"users": []}
    other = (await api.host())["access_token"]
    code, body = await api.call("GET", path, token=other)
    assert (code, body["error"]["code"]) == (403, "forbidden")
