"""A registrant cancels from their lobby: the lobby links to the cancel page, the page cancels, and
the link then no longer admits them (the lobby of a second tab is closed with the reason)."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, watch

pytestmark = pytest.mark.browser


def test_the_registrant_cancels_from_the_lobby(contexts, http, page_errors):
    host = http.host()
    webinar = http.webinar(host["access_token"], title=f"Cancel me {secrets.token_hex(3)}")
    reg = http.register(webinar["id"], "Cass")
    context = contexts(PHONE)

    tab = watch(context.new_page(), page_errors)
    tab.goto("/join/" + reg["join_url"].split("/join/", 1)[1])  # the path and token, on the test server
    expect(tab.locator("#lobby")).to_be_visible()
    expect(tab.locator("#attendees")).to_have_text("👥 1")
    cancel = tab.get_by_role("link", name="Can't make it? Cancel my registration")
    expect(cancel).to_be_visible()
    href = cancel.get_attribute("href")
    assert href is not None and re.fullmatch(rf"/cancel/{webinar['id']}#token=[\w.-]+", href)

    page = watch(context.new_page(), page_errors)
    page.goto(href)
    expect(page.locator("#title")).to_have_text(webinar["title"])
    page.get_by_role("button", name="Cancel my registration").click()
    expect(page.locator("#done")).to_contain_text("no longer works")
    expect(page).to_have_url(re.compile(rf"/cancel/{webinar['id']}$"))

    # The open lobby is closed by the server (4003) and its link refused from then on.
    expect(tab.locator("#fatal")).to_contain_text("registration was cancelled", timeout=30_000)
