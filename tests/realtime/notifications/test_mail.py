"""Email over a real SMTP server (aiosmtpd on a free port): the registration loop's mails, their
headers, parts and calendar files, an SMTP server that is down for a while, 4xx and 5xx answers,
and names that try to become headers."""

from __future__ import annotations

import datetime as dt
import re
from email.message import EmailMessage

import pytest
from icalendar import Calendar

from realtime.jobs.retention import RETENTION_JOB
from tests.api import Api


@pytest.fixture
def services_env(smtp):
    return {"SMTP_URL": smtp.url, "MAIL_FROM": "Webinar Team <team@webinars.example.org>"}


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


def parts(message: EmailMessage) -> tuple[str, str, list[EmailMessage]]:
    """The text part, the HTML part and the attachments."""
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html, list(message.iter_attachments())


def event_of(attachment: EmailMessage) -> tuple[Calendar, object]:
    cal = Calendar.from_ical(attachment.get_content())
    return cal, cal.walk("VEVENT")[0]


async def register(api, webinar_id, name, email, timezone="America/New_York"):
    body = {"name": name, "email": email, "timezone": timezone}
    code, reg = await api.call("POST", f"/api/webinars/{webinar_id}/registrations", body)
    assert code == 201, reg
    return reg


@pytest.mark.gen_test(timeout=90)
async def test_confirmation_mail_carries_link_local_time_calendar_and_unsubscribe(api, services, smtp):
    host = await api.host()
    starts = dt.datetime(2031, 3, 4, 17, 30, tzinfo=dt.UTC)
    w = await api.webinar(host["access_token"], title="Launch <day> & more", starts_at=starts.isoformat())
    reg = await register(api, w["id"], "Ada Lovelace", "ada@example.org")

    [message] = await smtp.wait_for(1)
    assert message["From"] == "Webinar Team <team@webinars.example.org>"
    assert message["To"] == "Ada Lovelace <ada@example.org>"
    assert message["Subject"] == "Registration confirmed: Launch <day> & more"
    assert message["Date"] and re.fullmatch(r"<[^@>]+@webinars\.example\.org>", message["Message-ID"])
    unsubscribe = re.fullmatch(r"<(http://[^>]+/unsubscribe/[^>]+)>", message["List-Unsubscribe"].strip())
    assert unsubscribe and message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    text, html, attachments = parts(message)
    link = reg["join_url"].split("#token=")[0]
    assert link + "#token=" in text and link + "#token=" in html
    token = re.search(r"#token=([\w.-]+)", text).group(1)
    assert services.tokens.verify(token).webinar == w["id"]
    # 17:30 UTC is 12:30 in New York in March 2031 (EST), shown with the zone's name.
    assert "Tuesday 4 March 2031, 12:30 EST (America/New_York)" in text
    assert "Launch &lt;day&gt; &amp; more" in html and "<day>" not in html  # autoescaped
    assert "calendar.google.com" in text and "outlook.live.com" in html

    [ics] = attachments
    assert ics.get_content_type() == "text/calendar" and ics.get_param("method") == "REQUEST"
    cal, event = event_of(ics)
    assert str(cal["METHOD"]) == "REQUEST" and int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == starts
    assert event.decoded("DTEND") == starts + dt.timedelta(minutes=60)
    assert str(event["UID"]) == f"webinar-{w['id']}@webinars.example.org"


@pytest.mark.gen_test(timeout=120)
async def test_reschedule_moves_the_event_and_cancel_removes_it(api, services, smtp):
    host = await api.host()
    token = host["access_token"]
    w = await api.webinar(token, starts_at="2031-05-01T10:00:00+00:00")
    await register(api, w["id"], "Bo", "bo@example.org", "Europe/Paris")
    [first] = await smtp.wait_for(1)
    _, original = event_of(parts(first)[2][0])

    code, _ = await api.call(
        "PATCH", f"/api/webinars/{w['id']}", {"starts_at": "2031-05-02T15:00:00Z"}, token
    )
    assert code == 200
    moved = (await smtp.wait_for(2))[1]
    assert moved["Subject"].startswith("New time:")
    text, _, [ics] = parts(moved)
    assert "Friday 2 May 2031, 17:00 CEST (Europe/Paris)" in text
    cal, event = event_of(ics)
    assert str(cal["METHOD"]) == "REQUEST" and event["UID"] == original["UID"]
    assert int(event["SEQUENCE"]) == int(original["SEQUENCE"]) + 1
    assert event.decoded("DTSTART") == dt.datetime(2031, 5, 2, 15, 0, tzinfo=dt.UTC)

    code, _ = await api.call("POST", f"/api/webinars/{w['id']}/cancel", token=token)
    assert code == 200
    cancelled = (await smtp.wait_for(3))[2]
    cal, event = event_of(parts(cancelled)[2][0])
    assert str(cal["METHOD"]) == "CANCEL" and event["UID"] == original["UID"]
    assert int(event["SEQUENCE"]) == int(original["SEQUENCE"]) + 2 and str(event["STATUS"]) == "CANCELLED"


@pytest.fixture
def driven(io_loop, services):
    """The worker loop stopped: the test runs jobs one by one."""
    io_loop.run_sync(services.notifications.worker.close)
    return services.notifications


async def run_due(services):
    """Make every queued job due now (but the server's next retention run) and run them all; how many ran."""
    queued = {"status": "queued", "kind": {"$ne": RETENTION_JOB}}
    await services.db.jobs.update_many(queued, {"$set": {"run_at": dt.datetime.now(dt.UTC)}})
    count = 0
    while await services.notifications.worker.run_one():
        count += 1
    return count


async def fan_out_to(services, emails):
    """Three registrants of a webinar, and its 'is live' fan-out queued."""
    db = services.db
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    await db.webinars.insert_one(
        {"_id": "wm", "title": "Mail day", "starts_at": starts, "status": "live", "owner_id": "h"}
    )
    for n, address in enumerate(emails):
        await db.users.insert_one({"_id": f"u{n}", "email": address, "name": f"User {n}", "role": "attendee"})
        await db.registrations.insert_one(
            {
                "_id": f"r{n}",
                "webinar_id": "wm",
                "user_id": f"u{n}",
                "email": address,
                "name": f"User {n}",
                "status": "approved",
                "created_at": starts,
            }
        )
    from realtime.webinars.records import Webinar

    await services.notifications.triggers.webinar_live(
        Webinar.from_doc(await db.webinars.find_one({"_id": "wm"}))
    )


@pytest.mark.gen_test(timeout=120)
async def test_smtp_down_for_a_while_then_up_every_mail_arrives_once(driven, services, smtp):
    smtp.stop()
    emails = ["a@example.org", "b@example.org", "c@example.org"]
    await fan_out_to(services, emails)
    assert await run_due(services) == 2  # the fan-out, then its mail batch, which finds no server
    job = await services.db.jobs.find_one({"kind": "mail.send"})
    assert job["status"] == "queued" and job["attempts"] == 1 and "Error connecting" in job["last_error"]
    assert await services.db.mail.count_documents({"status": "queued"}) == 3
    assert await run_due(services) == 1  # still down: waits again
    assert await services.db.mail.count_documents({"status": "queued"}) == 3

    smtp.start()
    assert await run_due(services) == 1
    await smtp.wait_for(3)
    assert sorted(a for a in emails for _ in smtp.to(a)) == emails  # each exactly once
    assert await run_due(services) == 0
    assert await services.db.mail.count_documents({"status": "sent"}) == 3
    for address in emails:
        [m] = smtp.to(address)
        assert m["Subject"] == "Mail day is live: join now"
        assert "/join/wm#token=" in parts(m)[0]  # the live mail opens the personal join link


@pytest.mark.gen_test(timeout=120)
async def test_550_marks_the_address_undeliverable_451_is_retried(driven, services, smtp, api):
    smtp.refuse["b@example.org"] = "550 5.1.1 no such user"
    smtp.refuse["c@example.org"] = "451 4.7.1 try again later"
    emails = ["a@example.org", "b@example.org", "c@example.org"]
    await fan_out_to(services, emails)
    await run_due(services)
    await smtp.wait_for(1)
    assert len(smtp.to("a@example.org")) == 1 and not smtp.to("b@example.org")
    by_to = {m["to"]: m async for m in services.db.mail.find()}
    assert (
        by_to["b@example.org"]["status"] == "undeliverable" and "550" in by_to["b@example.org"]["last_error"]
    )
    assert by_to["c@example.org"]["status"] == "queued"  # 4xx: waits for the retry

    del smtp.refuse["c@example.org"]
    del smtp.refuse["b@example.org"]  # even when the server would now accept, b gets nothing more
    assert await run_due(services) == 1
    await smtp.wait_for(2)
    assert len(smtp.to("c@example.org")) == 1 and not smtp.to("b@example.org")

    # A later notification mails a and c, not b.
    await services.notifications.notifier.notify(
        ["u0", "u1", "u2"], "general", "Later", "news", "/x", "wm", "k"
    )
    await run_due(services)
    await smtp.wait_for(4)
    assert not smtp.to("b@example.org")
    assert await services.db.mail.count_documents({"to": "b@example.org"}) == 1

    # The host sees it in the registrant list.
    from realtime.auth.tokens import Claims

    host = Claims(sub="h", role="host", name="H", exp=0)
    regs = await services.domain.webinars.registrants(host, "wm", None, None)
    assert {r["email"]: r["email_undeliverable"] for r in regs} == {
        "a@example.org": False,
        "b@example.org": True,
        "c@example.org": False,
    }


@pytest.mark.gen_test(timeout=90)
async def test_names_with_line_breaks_and_non_ascii_stay_inside_their_header(driven, services, smtp):
    db = services.db
    await db.users.insert_one(
        {
            "_id": "eve",
            "email": "eve@example.org",
            "name": "Ève\r\nBcc: victim@example.org",
            "role": "attendee",
        }
    )
    title = "Größe\r\nX-Injected: yes"
    await services.notifications.notifier.notify(["eve"], "general", title, "body", "/x")
    await run_due(services)
    [m] = await smtp.wait_for(1)
    assert m["Bcc"] is None and m["X-Injected"] is None
    assert m["Subject"] == "Größe X-Injected: yes"
    assert m["To"].addresses[0].display_name == "Ève Bcc: victim@example.org"
    raw = smtp.raw[0].split(b"\r\n\r\n")[0]  # the message's own headers
    assert b"\nBcc:" not in raw and b"\nX-Injected" not in raw
    assert smtp.messages[0][0] == ["eve@example.org"]


@pytest.mark.gen_test(timeout=90)
async def test_one_click_unsubscribe_turns_that_categorys_email_off(
    driven, services, smtp, http_client, base_url
):
    await fan_out_to(services, ["a@example.org"])
    await run_due(services)
    [m] = await smtp.wait_for(1)
    link = m["List-Unsubscribe"].strip().strip("<>")
    assert link.startswith(services.settings.base_url + "/unsubscribe/")
    url = base_url + link.removeprefix(services.settings.base_url)  # the test server's port
    # GET (a link scanner, or the person) only asks.
    page = await http_client.fetch(url)
    assert page.code == 200 and b"Unsubscribe?" in page.body and b'method="post"' in page.body
    prefs = await services.notifications.notifier.preferences.get("u0")
    assert prefs.wants("live", "email")
    # The mail client's RFC 8058 one-click POST, with no sign-in.
    done = await http_client.fetch(url, method="POST", body="List-Unsubscribe=One-Click")
    assert done.code == 200 and b"You are unsubscribed" in done.body
    prefs = await services.notifications.notifier.preferences.get("u0")
    assert not prefs.wants("live", "email")
    assert prefs.wants("live", "in_app") and prefs.wants("general", "email")

    await services.notifications.notifier.notify(["u0"], "live", "Again", "b", "/x", "wm", "again")
    await services.notifications.notifier.notify(["u0"], "general", "Other", "b", "/x", "wm", "other")
    await run_due(services)
    [_, other] = await smtp.wait_for(2)
    assert other["Subject"] == "Other" and len(smtp.messages) == 2

    forged = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    bad = await http_client.fetch(forged, method="POST", body="List-Unsubscribe=One-Click", raise_error=False)
    assert bad.code == 404 and b"not valid" in bad.body


@pytest.mark.gen_test(timeout=120)
async def test_a_send_job_that_lost_its_lease_stops_and_the_new_owner_sends_the_rest_once(
    services, smtp, monkeypatch
):
    """A worker stalled past its lease while a long batch was being sent: another worker claims the
    job. The first stops after the slice it had under way (its outcomes written) instead of sending
    the whole batch again beside the new owner; the new owner sends only what is still queued."""
    from realtime.notifications import mail
    from storage.jobs import LeaseLost

    monkeypatch.setattr(mail, "SLICE", 2)
    n = services.notifications
    await n.worker.close()
    delivery = n.worker.handlers[mail.JOB_KIND].__self__
    docs = [
        {
            "_id": f"m{i}",
            "key": f"lease:{i}",
            "batch": "lease",
            "to": f"p{i}@example.org",
            "sender": "team@webinars.example.org",
            "raw": f"Subject: {i}\r\n\r\nhello\r\n".encode(),
            "status": "queued",
            "attempts": 0,
            "created_at": dt.datetime.now(dt.UTC),
        }
        for i in range(5)
    ]
    await delivery.submit("lease", docs)
    first = await n.jobs.claim("stalled", 60)
    send = delivery.transport.send
    taken: list[object] = []

    async def send_then_lose_the_lease(messages):
        outcomes = await send(messages)
        if not taken:  # the stalled worker's lease lapses during its first slice; another claims it
            await services.db.jobs.update_one(
                {"_id": first.id}, {"$set": {"lease_until": dt.datetime.now(dt.UTC)}}
            )
            taken.append(await n.jobs.claim("other", 60))
        return outcomes

    delivery.transport.send = send_then_lose_the_lease
    with pytest.raises(LeaseLost):
        await delivery.run(first)
    await smtp.wait_for(2)
    assert len(smtp.messages) == 2  # the stalled worker stopped after its slice
    assert await services.db.mail.count_documents({"batch": "lease", "status": "sent"}) == 2
    second = taken[0]
    assert second is not None and second.owner == "other"
    assert await delivery.run(second) == {"sent": 3}
    await smtp.wait_for(5)
    assert sorted(to for to, *_ in smtp.messages) == sorted([f"p{i}@example.org"] for i in range(5))
