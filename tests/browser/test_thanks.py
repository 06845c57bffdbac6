"""The end of a webinar for an attendee: thanks, the replay, the host's call to action, a rating."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, screenshot, watch

pytestmark = pytest.mark.browser


def test_attendees_get_a_thank_you_view_and_rate_the_webinar(contexts, http, page_errors):
    host = http.host()
    token = host["access_token"]
    cta = {"cta_url": "https://example.com/slides", "cta_label": "Get the slides"}
    w = http.webinar(token, title="Launch day", **cta)
    ada = http.register(w["id"], "Ada Lovelace")
    bo = http.register(w["id"], "Bo Phone")
    http.go_live(token, w["id"])
    page = watch(contexts(DESKTOP).new_page(), page_errors)
    page.goto(ada["join_url"])
    expect(page.get_by_test_id("connection")).to_have_text("Live")

    code, _ = http.call("POST", f"/api/webinars/{w['id']}/end", {}, token)
    assert code == 200
    expect(page.get_by_role("heading", name="The webinar has ended")).to_be_visible()
    link = page.get_by_role("link", name="Get the slides")
    expect(link).to_have_attribute("href", "https://example.com/slides")
    expect(page.locator("#replay")).to_be_hidden()
    expect(page.locator("#replay-later")).to_be_visible()

    page.get_by_role("button", name="Send my rating").click()
    expect(page.locator("#rating-status")).to_have_text("Pick a rating from 1 to 5 first.")
    page.get_by_text("4 ★").click()
    page.get_by_label("Anything to add? (optional)").fill("Clear and <b>useful</b>")
    screenshot(page, "thanks-desktop")
    page.get_by_role("button", name="Send my rating").click()
    expect(page.locator("#rating-status")).to_contain_text("Thanks for rating it 4 out of 5")
    code, report = http.call("GET", f"/api/webinars/{w['id']}/reports/feedback", token=token)
    assert code == 200 and [(r["name"], r["rating"], r["comment"]) for r in report["ratings"]] == [
        ("Ada Lovelace", 4, "Clear and <b>useful</b>")
    ]

    # the replay arrives later; a reload shows it, and the rating is remembered
    code, _ = http.call(
        "POST", f"/api/webinars/{w['id']}/recording", {"url": "https://example.com/replay"}, token
    )
    assert code == 202
    page.reload()
    expect(page.get_by_role("link", name="Watch the replay")).to_have_attribute(
        "href", "https://example.com/replay"
    )
    expect(page.locator("#rating-form")).to_be_hidden()
    expect(page.locator("#rating-status")).to_contain_text("4 out of 5")

    phone = watch(contexts(PHONE).new_page(), page_errors)
    phone.goto(bo["join_url"])
    expect(phone.get_by_role("heading", name="The webinar has ended")).to_be_visible()
    expect(phone.get_by_role("button", name="Send my rating")).to_be_visible()
    screenshot(phone, "thanks-phone")
    assert phone.evaluate("document.documentElement.scrollWidth <= innerWidth")
