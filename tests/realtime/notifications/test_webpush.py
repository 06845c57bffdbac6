"""Web Push end to end against the loopback push service (tests/pushservice.py)."""

import json

import pytest

from realtime.notifications.webpush import generate_vapid_key, load_vapid, public_key_of
from tests.pushservice import PushService


@pytest.fixture
def services_env():
    return {"WORKER_POLL_INTERVAL": "0.05"}


@pytest.fixture
def push_service(io_loop):
    service = PushService()
    service.start()
    yield service
    service.stop()


async def call(http_client, base_url, method, path, token=None, body=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = await http_client.fetch(
        base_url + path,
        method=method,
        headers=headers,
        body=json.dumps(body) if body is not None else None,
        raise_error=False,
        allow_nonstandard_methods=True,
    )
    return resp.code, (json.loads(resp.body) if resp.body else None)


async def subscribe(http_client, base_url, services, push_service, user, name):
    token = services.tokens.issue(user, role="attendee")
    browser = push_service.browser(name)
    code, out = await call(
        http_client, base_url, "POST", "/api/push/subscriptions", token, browser.subscription
    )
    assert code == 201
    return token, browser


@pytest.mark.gen_test(timeout=30)
async def test_push_round_trip_is_encrypted_and_vapid_signed(http_client, base_url, services, push_service):
    code, key = await call(http_client, base_url, "GET", "/api/push/vapid-public-key")
    assert code == 200 and len(key["public_key"]) == 87  # 65-byte uncompressed point, base64url
    await subscribe(http_client, base_url, services, push_service, "ann", "ann-laptop")
    await subscribe(http_client, base_url, services, push_service, "ann", "ann-phone")
    notifier = services.notifications.notifier
    await notifier.notify(["ann"], "announcement", "Doors open", "Come in", "https://x/w/1", None, "ev-1")
    await push_service.wait_for(lambda: len(push_service.received) == 2)
    got = {d.browser: d for d in push_service.received}
    assert set(got) == {"ann-laptop", "ann-phone"}
    assert got["ann-phone"].message == {
        "title": "Doors open",
        "body": "Come in",
        "url": "https://x/w/1",
        "category": "announcement",
        "tag": "ev-1",
    }
    assert got["ann-phone"].vapid_key == key["public_key"]
    assert got["ann-phone"].headers["Content-Encoding"] == "aes128gcm"

    # Push off for announcements: in the inbox, not pushed.
    await notifier.preferences.update("ann", {"announcement": {"push": False}})
    assert await notifier.notify(["ann"], "announcement", "Quiet", "", "/", None, "ev-2") == 1
    await notifier.notify(["ann"], "qa", "Answered", "", "/", None, "ev-3")
    await push_service.wait_for(lambda: len(push_service.received) == 4)
    assert {d.message["title"] for d in push_service.received[2:]} == {"Answered"}


@pytest.mark.gen_test(timeout=30)
async def test_gone_subscription_is_removed(http_client, base_url, services, push_service):
    token, browser = await subscribe(http_client, base_url, services, push_service, "bob", "bob-old")
    push_service.answer("bob-old", 410)
    await services.notifications.notifier.notify(["bob"], "general", "Hi", "", "/")
    await push_service.wait_for(lambda: ("bob-old", 410) in push_service.attempts)

    async def removed():
        return await services.db.push_subscriptions.count_documents({"user_id": "bob"}) == 0

    from tests.handlers.test_notifications import wait_until

    await wait_until(removed)
    # Unsubscribing explicitly: 204, then 404 for a subscription that is gone.
    token, browser = await subscribe(http_client, base_url, services, push_service, "bob", "bob-new")
    body = {"endpoint": browser.endpoint}
    assert (await call(http_client, base_url, "DELETE", "/api/push/subscriptions", token, body))[0] == 204
    code, err = await call(http_client, base_url, "DELETE", "/api/push/subscriptions", token, body)
    assert code == 404 and err["error"]["code"] == "subscription_not_found"


@pytest.mark.gen_test(timeout=30)
async def test_rate_limited_and_failing_pushes_are_retried(http_client, base_url, services, push_service):
    await subscribe(http_client, base_url, services, push_service, "cy", "cy-1")
    await subscribe(http_client, base_url, services, push_service, "cy", "cy-2")
    push_service.answer("cy-1", 429, 503)  # Retry-After: 0 on 429; 503 backs off 2 s
    await services.notifications.notifier.notify(["cy"], "general", "Retry me", "", "/")
    await push_service.wait_for(lambda: len(push_service.received) == 2)
    tries = [s for b, s in push_service.attempts if b == "cy-1"]
    assert tries == [429, 503, 201]
    assert [s for b, s in push_service.attempts if b == "cy-2"] == [201]  # not sent twice


def test_vapid_keys_load_from_raw_and_pem():
    raw = generate_vapid_key()
    signer = load_vapid(raw)
    pem = signer.private_pem().decode()
    assert public_key_of(load_vapid(pem)) == public_key_of(signer)


@pytest.mark.gen_test
async def test_service_worker_is_served_from_the_root(http_client, base_url):
    resp = await http_client.fetch(base_url + "/sw.js")
    assert resp.headers["Content-Type"].startswith(("application/javascript", "text/javascript"))
    assert resp.headers["Service-Worker-Allowed"] == "/"
    body = resp.body.decode()
    assert "showNotification" in body and "notificationclick" in body


@pytest.mark.gen_test(timeout=60)
async def test_a_push_about_a_webinar_opens_each_recipients_own_link(
    http_client, base_url, services, push_service
):
    from tests.api import Api, join_token

    api = Api(http_client, base_url)
    host = await api.host()
    w = await api.webinar(host["access_token"], title="Pushed")
    attendee = services.tokens.verify(join_token(await api.register(w["id"], "Pia"))).sub
    host_id = services.tokens.verify(host["access_token"]).sub
    await subscribe(http_client, base_url, services, push_service, attendee, "pia-phone")
    await subscribe(http_client, base_url, services, push_service, host_id, "host-laptop")
    links = services.notifications.notifier.links
    await services.notifications.notifier.notify(
        [attendee, host_id], "live", "Pushed is live", "", links.page(w["id"]), w["id"], "live-1"
    )
    await push_service.wait_for(lambda: len(push_service.received) == 2)
    got = {d.browser: d.message["url"] for d in push_service.received}
    assert got["host-laptop"] == links.console(w["id"])
    page, _, token = got["pia-phone"].partition("#token=")
    assert page.endswith(f"/join/{w['id']}")
    claims = services.tokens.verify(token)
    assert (claims.sub, claims.webinar) == (attendee, w["id"])
