"""A registrant cancels from the page their mail leads to: every mail with their link carries the
cancel page, the cancel mails a METHOD:CANCEL calendar file for the same event, and the link ends.
Mail goes to a real SMTP server (aiosmtpd on a free port)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from icalendar import Calendar

from tests.api import Api


@pytest.fixture
def services_env(smtp):
    return {"SMTP_URL": smtp.url}


def text_of(message):
    return message.get_body(("plain",)).get_content()


def calendar_of(message):
    ics = next(a for a in message.iter_attachments() if a.get_content_type() == "text/calendar")
    return Calendar.from_ical(ics.get_content())


@pytest.mark.gen_test(timeout=120)
async def test_the_registrant_cancels_from_the_link_in_their_mail(http_client, base_url, smtp):
    api = Api(http_client, base_url)
    host = await api.host()
    w = await api.webinar(host["access_token"], title="Roadmap")
    await api.register(w["id"], "Lou", "lou@example.org")
    [confirmed] = await smtp.wait_for(1)
    cancel = re.search(r"Cancel your registration: (\S+)", text_of(confirmed)).group(1)
    path = urlsplit(cancel).path
    assert path == f"/cancel/{w['id']}" and urlsplit(cancel).fragment.startswith("token=")
    html = confirmed.get_body(("html",)).get_content()
    assert f'href="{cancel}"' in html
    token = cancel.split("#token=", 1)[1]
    page = await http_client.fetch(base_url + path)
    assert page.code == 200 and b"/static/js/cancel.js" in page.body

    code, reg = await api.call("DELETE", f"/api/webinars/{w['id']}/registration", token=token)
    assert code == 200 and reg["status"] == "cancelled"
    [_, mail] = await smtp.wait_for(2)
    assert mail["Subject"] == "Registration cancelled: Roadmap"
    assert "no longer works" in text_of(mail) and "/cancel/" not in text_of(mail)
    was, now = calendar_of(confirmed), calendar_of(mail)
    assert str(now["METHOD"]) == "CANCEL"
    [event_was] = was.walk("VEVENT")
    [event_now] = now.walk("VEVENT")
    assert event_now["UID"] == event_was["UID"] and event_now["SEQUENCE"] > event_was["SEQUENCE"]

    code, body = await api.call("DELETE", f"/api/webinars/{w['id']}/registration", token=token)
    assert code == 401 and body["error"]["code"] == "token_revoked"
    code, body = await api.call("GET", f"/api/webinars/{w['id']}/state", token=token)
    assert code == 401 and body["error"]["code"] == "token_revoked"


@pytest.mark.gen_test(timeout=60)
async def test_only_a_registrant_cancels_their_own_registration(http_client, base_url, smtp):
    api = Api(http_client, base_url)
    host = await api.host()
    w = await api.webinar(host["access_token"])
    other = await api.webinar(host["access_token"])
    reg = await api.register(other["id"], "Max")
    guest = reg["join_url"].split("#token=", 1)[1]
    path = f"/api/webinars/{w['id']}/registration"
    code, body = await api.call("DELETE", path, token=guest)  # a link to another webinar
    assert code == 403 and body["error"]["code"] == "forbidden"
    code, body = await api.call("DELETE", path, token=host["access_token"])
    assert code == 403 and body["error"]["code"] == "forbidden"
    code, body = await api.call("DELETE", path)
    assert code == 401
    code, body = await api.call("DELETE", "/api/webinars/nope/registration", token=guest)
    assert code == 404
