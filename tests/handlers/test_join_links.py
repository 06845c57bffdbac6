"""Attendees find their way in: the link mailed again (no enumeration, rate-limited), re-registering
re-sends it, the approval loop mails the pending registrant, and every inbox link about a webinar is
the recipient's own way in. Mail goes to a real SMTP server (aiosmtpd on a free port)."""

from __future__ import annotations

import re

import pytest
from icalendar import Calendar

from realtime.webinars.service import LINK_RATE
from tests.api import Api


@pytest.fixture
def services_env(smtp):
    return {"SMTP_URL": smtp.url}


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


def text_of(message):
    return message.get_body(("plain",)).get_content()


def token_in(message):
    return re.search(r"/join/[\w-]+#token=([\w.-]+)", text_of(message)).group(1)


@pytest.mark.gen_test(timeout=120)
async def test_link_again_answers_alike_for_known_and_unknown_addresses(api, services, smtp):
    host = await api.host()
    w = await api.webinar(host["access_token"], title="Town hall")
    await api.register(w["id"], "Kim", "kim@example.org")
    await smtp.wait_for(1)  # the confirmation

    path = f"/api/webinars/{w['id']}/join-link"
    known = await api.call("POST", path, {"email": "kim@example.org"})
    unknown = await api.call("POST", path, {"email": "nobody@example.org"})
    assert known == unknown == (202, {"status": "sent_if_registered"})
    [_, again] = await smtp.wait_for(2)
    assert again["To"] == "Kim <kim@example.org>" and again["Subject"] == "Your link to Town hall"
    assert services.tokens.verify(token_in(again)).webinar == w["id"]
    ics = next(again.iter_attachments())
    assert str(Calendar.from_ical(ics.get_content())["METHOD"]) == "REQUEST"
    assert not smtp.to("nobody@example.org")

    # Per address: the limit answers 429 alike for both kinds of address.
    for _ in range(LINK_RATE - 1):
        assert (await api.call("POST", path, {"email": "kim@example.org"}))[0] == 202
        assert (await api.call("POST", path, {"email": "nobody@example.org"}))[0] == 202
    over_known = await api.call("POST", path, {"email": "kim@example.org"})
    over_unknown = await api.call("POST", path, {"email": "nobody@example.org"})
    assert over_known[0] == over_unknown[0] == 429
    assert over_known[1]["error"]["code"] == over_unknown[1]["error"]["code"] == "rate_limited"
    await smtp.wait_for(1 + LINK_RATE)
    assert len(smtp.to("kim@example.org")) == 1 + LINK_RATE

    bad = await api.call("POST", path, {"email": "not an address"})
    assert bad[0] == 422 and bad[1]["error"]["code"] == "invalid"
    assert (await api.call("POST", "/api/webinars/nope/join-link", {"email": "a@example.org"}))[0] == 404


@pytest.mark.gen_test(timeout=120)
async def test_link_again_is_limited_per_client_whatever_the_address(api, services, smtp):
    from realtime.webinars.service import LINK_CLIENT_RATE

    host = await api.host()
    w = await api.webinar(host["access_token"])
    path = f"/api/webinars/{w['id']}/join-link"
    for n in range(LINK_CLIENT_RATE):
        assert (await api.call("POST", path, {"email": f"p{n}@example.org"}))[0] == 202
    code, body = await api.call("POST", path, {"email": "fresh@example.org"})
    assert code == 429 and body["error"]["code"] == "rate_limited"


@pytest.mark.gen_test(timeout=120)
async def test_registering_again_mails_the_link_instead_of_a_dead_end(api, services, smtp):
    host = await api.host()
    w = await api.webinar(host["access_token"], title="Again")
    first = await api.register(w["id"], "Lou", "lou@example.org")
    await smtp.wait_for(1)
    code, body = await api.call(
        "POST", f"/api/webinars/{w['id']}/registrations", {"name": "Lou", "email": "lou@example.org"}
    )
    assert code == 409 and body["error"]["code"] == "already_registered"
    assert "emailed" in body["error"]["message"] and "join_url" not in body
    [_, again] = await smtp.wait_for(2)
    assert again["Subject"] == "Your link to Again"
    assert services.tokens.verify(token_in(again)).sub == first["user_id"]


@pytest.mark.gen_test(timeout=120)
async def test_approval_mode_mails_the_pending_registrant_on_submission_and_decision(api, services, smtp):
    host = await api.host()
    token = host["access_token"]
    w = await api.webinar(token, title="Curated", registration_mode="approval")
    pat = await api.register(w["id"], "Pat", "pat@example.org")
    rex = await api.register(w["id"], "Rex", "rex@example.org")
    assert pat["status"] == rex["status"] == "pending"
    await smtp.wait_for(4)  # each registrant's, and the host's "to approve" for each
    received = smtp.to("pat@example.org") + smtp.to("rex@example.org")
    assert [m["Subject"] for m in received] == ["Registration received: Curated"] * 2
    assert all("/join/" not in text_of(m) and not list(m.iter_attachments()) for m in received)

    base = f"/api/webinars/{w['id']}/registrations"
    assert (await api.call("POST", f"{base}/{pat['id']}/approve", token=token))[0] == 200
    assert (await api.call("POST", f"{base}/{rex['id']}/reject", token=token))[0] == 200
    await smtp.wait_for(6)
    [approved] = [m for m in smtp.to("pat@example.org") if m["Subject"].startswith("Registration confirmed")]
    assert services.tokens.verify(token_in(approved)).webinar == w["id"]
    assert "approved your registration" in text_of(approved)
    assert next(approved.iter_attachments()).get_content_type() == "text/calendar"
    [declined] = [m for m in smtp.to("rex@example.org") if m is not received[0] and m is not received[1]]
    assert "declined" in text_of(declined) and "/join/" not in text_of(declined)


@pytest.mark.gen_test(timeout=120)
async def test_inbox_links_open_the_registrants_room_and_the_hosts_console(api, services, smtp):
    host = await api.host()
    token = host["access_token"]
    w = await api.webinar(token, title="Links")
    reg = await api.register(w["id"], "Ned", "ned@example.org")
    # The host registered too (to see what attendees get): their link is the console.
    await services.db.registrations.insert_one(
        {
            "_id": "hreg",
            "webinar_id": w["id"],
            "user_id": host["user"]["id"],
            "name": "H",
            "email": host["user"]["email"],
            "status": "approved",
            "created_at": None,
        }
    )
    notifier = services.notifications.notifier
    url = services.notifications.triggers.url(w["id"])
    await notifier.notify(
        [reg["user_id"], host["user"]["id"], "stranger"], "live", "Live", "Join now.", url, w["id"], "k"
    )
    items = {d["user_id"]: d["url"] async for d in services.db.notifications.find({"key": "k"})}
    room_token = items[reg["user_id"]].split(f"/join/{w['id']}#token=")[1]
    assert services.tokens.verify(room_token).sub == reg["user_id"]
    assert items[host["user"]["id"]].endswith(f"/host#webinar={w['id']}")
    assert items["stranger"].endswith(f"/webinars/{w['id']}")

    code, item = await api.call("GET", "/api/notifications", token=room_token)
    assert code == 200 and item["items"][0]["url"] == items[reg["user_id"]]


@pytest.mark.gen_test(timeout=120)
async def test_hosts_are_told_of_a_registration_awaiting_approval(api, services, smtp):
    host = await api.host(email="owner@example.org")
    cohost = await api.host(email="cohost@example.org", name="Cory")
    token = host["access_token"]
    w = await api.webinar(token, title="Vetted", registration_mode="approval", cohosts=["cohost@example.org"])
    await api.register(w["id"], "Quin", "quin@example.org")
    await smtp.wait_for(3)  # the registrant's and both hosts'
    for address, account in (("owner@example.org", host), ("cohost@example.org", cohost)):
        [mail] = smtp.to(address)
        assert mail["Subject"] == "To approve: Quin for Vetted"
        assert f"/host#webinar={w['id']}" in text_of(mail) and "quin@example.org" in text_of(mail)
        code, inbox = await api.call("GET", "/api/notifications", token=account["access_token"])
        [item] = inbox["items"]
        assert item["title"] == "New registration to approve"
        assert item["url"].endswith(f"/host#webinar={w['id']}")


@pytest.mark.gen_test(timeout=120)
async def test_the_first_link_still_works_after_a_reschedule_days_later(api, services, smtp):
    from datetime import datetime, timedelta

    from tests.api import future, join_token

    host = await api.host()
    w = await api.webinar(host["access_token"], title="Moved", starts_at=future(2), duration_minutes=60)
    first = join_token(await api.register(w["id"], "Ines", "ines@example.org"))
    later = future(24 * 30)  # a month later: far past the first time's end
    code, _ = await api.call("PATCH", f"/api/webinars/{w['id']}", {"starts_at": later}, host["access_token"])
    assert code == 200
    claims = services.tokens.verify(first)  # the link from the first confirmation mail
    ends = datetime.fromisoformat(later) + timedelta(minutes=60)
    assert claims.exp > (ends + timedelta(days=1)).timestamp()  # still valid through the new time
    assert (await api.call("GET", f"/api/webinars/{w['id']}/state", token=first))[0] == 200


@pytest.mark.gen_test(timeout=120)
async def test_the_hosts_console_sees_a_pending_registration_live(api, services, smtp, base_url):
    from tests.wsclient import WsClient

    host = await api.host()
    token = host["access_token"]
    w = await api.webinar(token, title="Live queue", registration_mode="approval")
    console = await WsClient.connect(base_url, token)
    assert (await console.subscribe(f"backstage:{w['id']}"))["type"] == "subscribed"
    reg = await api.register(w["id"], "Val", "val@example.org")
    msg = await console.expect("registration.updated", channel=f"backstage:{w['id']}")
    assert msg["data"]["id"] == reg["id"] and msg["data"]["status"] == "pending"
    assert msg["data"]["email"] == "val@example.org"
    base = f"/api/webinars/{w['id']}/registrations/{reg['id']}"
    assert (await api.call("POST", f"{base}/approve", token=token))[0] == 200
    decided = await console.expect(lambda m: m["type"] == "registration.updated" and m["seq"] > msg["seq"])
    assert decided["data"]["status"] == "approved"
    # an attendee's link never opens the backstage
    await smtp.wait_for(3)  # Val's "received" and "confirmed", the host's "to approve"
    [confirmed] = [m for m in smtp.to("val@example.org") if m["Subject"].startswith("Registration confirmed")]
    guest = await WsClient.connect(base_url, token_in(confirmed))
    assert (await guest.subscribe(f"backstage:{w['id']}"))["code"] == "forbidden"
    console.close()
    guest.close()
