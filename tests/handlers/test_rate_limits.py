"""Rate limits where a request is cheap to send and expensive to answer: each refusal is 429
``rate_limited`` with ``Retry-After``, counted in MongoDB so that every process counts together."""

from __future__ import annotations

import asyncio
import json
import secrets
import urllib.error
import urllib.request

import pytest

from tests.api import Api
from tests.servers import AppProcess

API_KEY = "crm-" + secrets.token_urlsafe(32)
OTHER_KEY = "erp-" + secrets.token_urlsafe(32)


@pytest.fixture
def services_env():
    return {
        "API_KEYS": f"crm:{API_KEY},erp:{OTHER_KEY}",
        "SIGNUP_RATE": "2",
        "LOGIN_ADDRESS_RATE": "3",
        "REGISTRATION_RATE": "2",
        "TICKET_RATE": "2",
        "PUBLISH_RATE": "2",
    }


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


def signup(n: int) -> dict:
    return {"email": f"user{n}-{secrets.token_hex(3)}@example.com", "password": "x" * 12, "name": "N"}


def assert_limited(code: int, body: dict, headers, most: int) -> None:
    assert code == 429, body
    assert body["error"]["code"] == "rate_limited"
    wait = int(headers["Retry-After"])
    assert 1 <= wait <= most and body["error"]["retry_after"] == wait


async def call(http_client, url: str, body: dict, token: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    resp = await http_client.fetch(
        url, method="POST", body=json.dumps(body), headers=headers, raise_error=False
    )
    return resp.code, json.loads(resp.body), resp.headers


@pytest.mark.gen_test(timeout=60)
async def test_signups_per_address(http_client, base_url):
    codes = [(await call(http_client, base_url + "/api/auth/signup", signup(i)))[0] for i in range(2)]
    assert codes == [201, 201]
    code, body, headers = await call(http_client, base_url + "/api/auth/signup", signup(3))
    assert_limited(code, body, headers, 3600)


@pytest.mark.gen_test(timeout=60)
async def test_logins_per_address_across_emails(http_client, base_url):
    url = base_url + "/api/auth/login"
    attempts = [{"email": f"who{i}@example.com", "password": "guess guess"} for i in range(4)]
    codes = [(await call(http_client, url, a))[0] for a in attempts[:3]]
    assert codes == [401, 401, 401]
    assert_limited(*await call(http_client, url, attempts[3]), 60)


@pytest.mark.gen_test(timeout=60)
async def test_registrations_per_address(api, http_client, base_url):
    host = await api.host()
    webinar = await api.webinar(host["access_token"])
    url = f"{base_url}/api/webinars/{webinar['id']}/registrations"
    people = [{"name": f"P{i}", "email": f"p{i}@example.com"} for i in range(3)]
    assert [(await call(http_client, url, p))[0] for p in people[:2]] == [201, 201]
    assert_limited(*await call(http_client, url, people[2]), 60)


@pytest.mark.gen_test(timeout=60)
async def test_sse_tickets_per_user(services, http_client, base_url):
    url = base_url + "/api/realtime/tickets"
    ann = services.tokens.issue("ann", role="attendee")
    assert [(await call(http_client, url, {}, ann))[0] for _ in range(2)] == [201, 201]
    assert_limited(*await call(http_client, url, {}, ann), 60)
    bob = services.tokens.issue("bob", role="attendee")
    assert (await call(http_client, url, {}, bob))[0] == 201  # per user, not for everyone


@pytest.mark.gen_test(timeout=60)
async def test_publish_api_per_key(http_client, base_url):
    url = base_url + "/api/channels/user:u1/messages"
    message = {"type": "note", "data": {}, "durable": False}
    # Ten at once against two per second, until a round is refused: a machine however slow hits the
    # limiter with some of the ten within one second (the server times each attempt when it sees it).
    limited: list = []
    for _ in range(20):
        answers = await asyncio.gather(*(call(http_client, url, message, API_KEY) for _ in range(10)))
        assert {a[0] for a in answers} <= {202, 429}
        limited = [a for a in answers if a[0] == 429]
        if limited:
            break
    assert limited, "twenty rounds of ten publishes were never limited to two per second"
    assert_limited(*limited[0], 1)
    assert (await call(http_client, url, message, OTHER_KEY))[0] == 202  # per key


def test_the_count_is_shared_by_processes(mongo_server, test_id, tmp_path):
    env = {
        "MONGODB_URL": mongo_server.url,
        "MONGODB_DATABASE": test_id,
        "DATA_DIR": str(tmp_path),
        "SIGNUP_RATE": "2",
        "LOG_LEVEL": "warning",
    }
    apps = [AppProcess(env), AppProcess(env)]
    try:
        for app in apps:
            app.start()
        codes = []
        for i, app in enumerate([apps[0], apps[1], apps[0], apps[1]]):
            request = urllib.request.Request(
                app.url + "/api/auth/signup",
                json.dumps(signup(i)).encode(),
                {"Content-Type": "application/json"},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as resp:
                    codes.append(resp.status)
            except urllib.error.HTTPError as err:
                codes.append(err.code)
        assert codes == [201, 201, 429, 429]
    finally:
        for app in apps:
            app.stop()
            app.logfile.close()
