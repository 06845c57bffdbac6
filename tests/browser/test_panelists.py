"""Panelists and badges in Chromium: the host names a panelist in the console, the panelist answers a
question in the room, and every chat line from a host or panelist carries a text badge, in the
room and in the console. The console sets the thank-you call to action and shows the ratings."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, screenshot, watch
from tests.browser.test_live_room import host_opens, host_signs_in, join

pytestmark = pytest.mark.browser


def token_of(reg: dict[str, Any]) -> str:
    return reg["join_url"].split("#token=", 1)[1]


def say_in_chat(page: Any, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()


def edit_webinar(host: Any, **fields: str) -> None:
    """Edit the selected webinar in the console: each field by its label, then Save."""
    host.get_by_role("button", name="Edit", exact=True).click()
    for label, value in fields.items():
        host.get_by_label(label).fill(value)
    host.get_by_role("button", name="Save").click()
    expect(host.locator("#webinar-form")).to_be_hidden()


def line(page: Any, text: str) -> Any:
    return page.locator("#chat li").filter(has=page.locator(".text", has_text=text))


def test_a_panelist_named_in_the_console_answers_and_chats_with_a_badge(contexts, http, page_errors):
    account = http.host()
    w = http.webinar(account["access_token"], title="Panel day")
    pia = http.register(w["id"], "Pia Panel")
    ada = http.register(w["id"], "Ada Guest")

    host = watch(contexts().new_page(), page_errors)
    host_signs_in(host, account)
    host_opens(host, "Panel day")
    edit_webinar(host, Panelists=pia["email"])
    host.get_by_role("button", name="Edit", exact=True).click()
    expect(host.get_by_label("Panelists")).to_have_value(pia["email"])
    host.get_by_role("button", name="Cancel", exact=True).click()
    code, doc = http.call("GET", f"/api/webinars/{w['id']}/state", token=token_of(pia))
    assert (code, doc["role"]) == (200, "panelist"), doc
    http.go_live(account["access_token"], w["id"])
    expect(host.get_by_test_id("webinar-status")).to_have_text("● Live")

    panel = watch(contexts().new_page(), page_errors)
    join(panel, pia["join_url"])
    expect(panel.get_by_test_id("role-note")).to_contain_text("You are a panelist")
    guest = watch(contexts(PHONE).new_page(), page_errors)
    join(guest, ada["join_url"])
    expect(guest.get_by_test_id("role-note")).to_be_hidden()

    # the panelist's lines carry "Panelist" in the room and in the console; the host's "Host"
    say_in_chat(panel, "Hello from the <b>panel</b>")
    say_in_chat(host, "Welcome, everyone")
    say_in_chat(guest, "Hi!")
    for page in (guest, panel, host):
        expect(line(page, "Hello from the <b>panel</b>").get_by_test_id("role-badge")).to_have_text(
            "Panelist"
        )
        expect(line(page, "Welcome, everyone").get_by_test_id("role-badge")).to_have_text("Host")
        expect(line(page, "Hi!")).to_be_visible()
        expect(line(page, "Hi!").get_by_test_id("role-badge")).to_have_count(0)
    assert guest.locator("#chat b").count() == 0  # the text stays text
    screenshot(guest, "room-badges-phone")

    # an attendee asks; the panelist answers in the room's Q&A; the attendee sees the answer
    guest.get_by_role("tab", name="Q&A").click()
    guest.get_by_label("Ask the host a question").fill("Will there be a replay?")
    guest.get_by_role("button", name="Ask").click()
    expect(guest.locator("#questions li .text")).to_have_text(["Will there be a replay?"])
    expect(guest.get_by_role("button", name=re.compile("^Answer"))).to_have_count(0)
    panel.get_by_role("tab", name="Q&A").click()
    panel.get_by_label("Answer to: Will there be a replay?").fill("Yes, tomorrow")
    panel.get_by_role("button", name="Answer: Will there be a replay?").click()
    expect(guest.locator("#questions li .answer")).to_have_text(["Yes, tomorrow"])
    expect(guest.locator("#questions li .meta")).to_contain_text(["Answered by Pia Panel (Panelist)"])
    expect(host.locator("#questions li .answer")).to_have_text(["Yes, tomorrow"])
    expect(panel.get_by_role("button", name="Answer: Will there be a replay?")).to_have_count(0)
    screenshot(panel, "room-panelist-desktop")

    # the panelist's page offers no host action, and the server refuses one sent by hand
    reply = panel.evaluate(
        """async (wid) => {
          const token = sessionStorage.getItem(`join:${wid}`);
          const headers = {Authorization: `Bearer ${token}`};
          const r = await fetch(`/api/webinars/${wid}/end`, {method: "POST", headers});
          return [r.status, (await r.json()).error.code];
        }""",
        w["id"],
    )
    assert reply == [403, "forbidden"]
    expect(host.get_by_test_id("webinar-status")).to_have_text("● Live")


def test_the_console_sets_the_call_to_action_and_shows_the_ratings(contexts, http, page_errors):
    account = http.host()
    token = account["access_token"]
    w = http.webinar(token, title="Rated day")
    ada = http.register(w["id"], "Ada Rater")
    bo = http.register(w["id"], "Bo Rater")
    host = watch(contexts().new_page(), page_errors)
    host_signs_in(host, account)
    host_opens(host, "Rated day")

    link, label = "After the end: call to action link (optional)", "Its button text"
    edit_webinar(host, **{link: "https://example.com/offer", label: "Get the offer"})
    code, doc = http.call("GET", f"/api/webinars/{w['id']}")
    assert (doc["cta_url"], doc["cta_label"]) == ("https://example.com/offer", "Get the offer")
    host.get_by_role("button", name="Edit", exact=True).click()
    expect(host.get_by_label(label)).to_have_value("Get the offer")
    host.get_by_role("button", name="Cancel", exact=True).click()
    edit_webinar(host, **{label: ""})
    code, doc = http.call("GET", f"/api/webinars/{w['id']}")
    assert (doc["cta_url"], doc["cta_label"]) == ("https://example.com/offer", "")
    edit_webinar(host, **{link: ""})
    code, doc = http.call("GET", f"/api/webinars/{w['id']}")
    assert doc["cta_url"] == ""  # cleared: the thank-you view shows none

    http.go_live(token, w["id"])
    assert http.call("POST", f"/api/webinars/{w['id']}/end", {}, token)[0] == 200
    for reg, rating, comment in ((ada, 5, "Loved it <script>alert(1)</script>"), (bo, 2, "")):
        code, body = http.call(
            "POST", f"/api/webinars/{w['id']}/feedback", {"rating": rating, "comment": comment}, token_of(reg)
        )
        assert code == 201, body
    host.reload()
    expect(host.locator("#w-title")).to_have_text("Rated day")
    host.get_by_role("tab", name="Reports").click()
    expect(host.get_by_test_id("ratings-summary")).to_have_text("Average 3.5 of 5 from 2 ratings")
    items = host.locator("#ratings li")
    expect(items).to_have_count(2)
    expect(items.filter(has_text="Ada Rater").locator(".comment")).to_have_text(
        "Loved it <script>alert(1)</script>"
    )
    expect(items.filter(has_text="Ada Rater").locator(".stars")).to_have_attribute("aria-label", "5 of 5")
    expect(items.filter(has_text="Bo Rater").locator(".comment")).to_have_count(0)
    assert host.locator("#ratings script").count() == 0
    screenshot(host, "console-ratings-desktop")
