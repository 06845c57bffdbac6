"""Hosts reset a forgotten password by email: the same answer whether or not the account exists, a
single-use link that expires, and every session of the account ended. Mail goes to a real SMTP
server (aiosmtpd on a free port)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest

from storage.errors import Refused
from tests.api import Api
from tests.wsclient import WsClient

RESET = "/api/auth/password-reset"
CONFIRM = "/api/auth/password-reset/confirm"
OLD = "correct horse battery"
NEW = "a new long secret"


@pytest.fixture
def services_env(smtp):
    return {"SMTP_URL": smtp.url}


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


def reset_token(message):
    text = message.get_body(("plain",)).get_content()
    return re.search(r"/reset-password#token=([\w-]+)", text).group(1)


async def job_done(db, email):
    """The reset job for ``email`` has run (the worker offers no event for one job; poll its state)."""

    async def poll():
        while not await db.jobs.find_one(  # noqa: ASYNC110
            {"kind": "mail.password_reset", "payload.email": email, "status": "done"}
        ):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), 60)


@pytest.mark.gen_test(timeout=120)
async def test_a_mailed_link_resets_the_password_once_and_ends_every_session(api, services, smtp, base_url):
    host = await api.host("ida@example.org", "Ida")
    ws = await WsClient.connect(base_url, host["access_token"])

    unknown = await api.call("POST", RESET, {"email": "nobody@example.org"})
    known = await api.call("POST", RESET, {"email": "ida@example.org"})
    assert known == unknown == (202, {"status": "sent_if_registered"})
    [mail] = await smtp.wait_for(1)
    await job_done(services.db, "nobody@example.org")
    assert not smtp.to("nobody@example.org") and len(smtp.to("ida@example.org")) == 1
    assert mail["Subject"] == "Reset your password" and mail["Message-ID"] and mail["Date"]
    assert mail["List-Unsubscribe"] is None  # asked for, not a subscription: nothing to switch off
    assert "once, for 30 minutes" in mail.get_body(("plain",)).get_content()
    assert "/reset-password#token=" in mail.get_body(("html",)).get_content()
    token = reset_token(mail)
    assert await services.db.password_resets.count_documents({"_id": token}) == 0  # kept hashed

    page = await api.http.fetch(base_url + "/reset-password", raise_error=False)
    assert page.code == 200 and b"/static/js/reset-password.js" in page.body

    short = await api.call("POST", CONFIRM, {"token": token, "password": "short"})
    assert short[0] == 422
    assert await api.call("POST", CONFIRM, {"token": token, "password": "a new long secret"}) == (204, None)
    closed = await ws.closed()
    assert closed.code == 4003

    refresh = await api.call("POST", "/api/auth/refresh", {"refresh_token": host["refresh_token"]})
    assert refresh[0] == 401
    me = await api.call("GET", "/api/me", token=host["access_token"])
    assert me[0] == 401 and me[1]["error"]["code"] == "token_revoked"
    old = await api.call("POST", "/api/auth/login", {"email": "ida@example.org", "password": OLD})
    assert old[0] == 401 and old[1]["error"]["code"] == "bad_credentials"
    new = await api.call(
        "POST", "/api/auth/login", {"email": "ida@example.org", "password": "a new long secret"}
    )
    assert new[0] == 200
    assert (await api.call("GET", "/api/me", token=new[1]["access_token"]))[0] == 200

    again = await api.call("POST", CONFIRM, {"token": token, "password": "yet another secret"})
    assert again[0] == 401 and again[1]["error"]["code"] == "reset_invalid"
    made_up = await api.call("POST", CONFIRM, {"token": "x" * 43, "password": "yet another secret"})
    assert made_up == again


@pytest.mark.gen_test(timeout=120)
async def test_an_expired_link_is_refused(api, services, smtp):
    await api.host("eve@example.org", "Eve")
    assert (await api.call("POST", RESET, {"email": "eve@example.org"}))[0] == 202
    [mail] = await smtp.wait_for(1)
    # 30 minutes pass (the test moves the stored expiry, not the clock).
    await services.db.password_resets.update_many(
        {}, {"$set": {"expires_at": datetime(2000, 1, 1, tzinfo=UTC)}}
    )
    code, body = await api.call(
        "POST", CONFIRM, {"token": reset_token(mail), "password": "a new long secret"}
    )
    assert code == 401 and body["error"]["code"] == "reset_invalid"
    login = await api.call("POST", "/api/auth/login", {"email": "eve@example.org", "password": OLD})
    assert login[0] == 200


@pytest.mark.gen_test(timeout=120)
async def test_requests_are_limited_per_address_and_per_client_alike_for_any_address(api, services, smtp):
    rate = services.settings.password_reset_rate
    await api.host("max@example.org", "Max")
    for _ in range(rate):
        assert (await api.call("POST", RESET, {"email": "max@example.org"}))[0] == 202
        assert (await api.call("POST", RESET, {"email": "ghost@example.org"}))[0] == 202
    over_known = await api.call("POST", RESET, {"email": "max@example.org"})
    over_unknown = await api.call("POST", RESET, {"email": "ghost@example.org"})
    assert over_known[0] == over_unknown[0] == 429
    assert over_known[1]["error"]["code"] == over_unknown[1]["error"]["code"] == "rate_limited"
    for n in range(2 * rate):
        assert (await api.call("POST", RESET, {"email": f"p{n}@example.org"}))[0] == 202
    code, body = await api.call("POST", RESET, {"email": "fresh@example.org"})
    assert code == 429 and body["error"]["code"] == "rate_limited" and body["error"]["retry_after"] > 0
    await smtp.wait_for(rate)
    bad = await api.call("POST", RESET, {"email": "not an address"})
    assert bad[0] == 422 and bad[1]["error"]["code"] == "invalid"


@pytest.mark.gen_test(timeout=60)
async def test_a_token_issued_right_after_a_reset_works_and_one_from_just_before_does_not(services):
    """A token's ``iat`` has milliseconds: a login in the reset's own second is not refused."""
    accounts, tokens = services.domain.accounts, services.tokens
    user = await accounts.create_host("uma@example.org", OLD, "Uma")
    before = tokens.issue(user["_id"], role="host")
    await accounts.reset_password("uma@example.org", NEW)
    after = tokens.issue(user["_id"], role="host")
    assert (await tokens.authenticate(after)).sub == user["_id"]
    with pytest.raises(Refused) as refused:
        await tokens.authenticate(before)
    assert refused.value.code == "token_revoked"
