"""A new attendee's path when the tab is gone: register, close the tab, ask for the link again,
open it from the development mailbox (no SMTP_URL: the app keeps its mail), reach the lobby, and be
moved into the room when the host goes live."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, screenshot, watch

pytestmark = pytest.mark.browser


def test_register_close_the_tab_get_the_link_again_and_join(contexts, http, page_errors):
    host = http.host()
    webinar = http.webinar(host["access_token"], title=f"Way in {secrets.token_hex(3)}")
    email = f"wren-{secrets.token_hex(3)}@example.com"
    context = contexts(PHONE)

    tab = watch(context.new_page(), page_errors)
    tab.goto(f"/webinars/{webinar['id']}/register")
    tab.get_by_label("Your name").fill("Wren Newcomer")
    tab.get_by_label("Email", exact=True).fill(email)
    tab.get_by_role("button", name="Register").click()
    expect(tab.get_by_role("link", name="Join the webinar")).to_be_visible()
    tab.close()  # the link shown once is gone with the tab

    tab = watch(context.new_page(), page_errors)
    tab.goto(f"/webinars/{webinar['id']}")
    tab.get_by_label("Address you registered with").fill(email)
    tab.get_by_role("button", name="Email me my link again").click()
    expect(tab.locator("#resend-status")).to_contain_text("on its way")

    # The mailbox shows the confirmation and the link mail; open the latter and follow its link.
    tab.goto("/dev/mailbox")  # it reloads itself until the mail (sent by a background job) is there
    mail = tab.get_by_role("link", name=f"Your link to {webinar['title']}").first
    expect(mail).to_be_visible(timeout=30_000)
    mail.click()
    expect(tab.locator("#subject")).to_have_text(f"Your link to {webinar['title']}")
    expect(tab.locator("#text")).to_contain_text("Hello Wren Newcomer")
    tab.locator("#text a", has_text=re.compile(rf"/join/{webinar['id']}#token=")).click()
    expect(tab).to_have_url(re.compile(rf"/join/{webinar['id']}$"))
    expect(tab.locator("#lobby")).to_be_visible()
    expect(tab.locator("#lobby-title")).to_have_text(webinar["title"])
    expect(tab.get_by_test_id("connection")).to_have_text("Live")
    expect(tab.locator("#attendees")).to_have_text("👥 1")  # subscribed to the room (not just connected)
    screenshot(tab, "attendee-lobby-from-mailbox")

    http.go_live(host["access_token"], webinar["id"])
    expect(tab.locator("#live")).to_be_visible()
    expect(tab.locator("#lobby")).to_be_hidden()
