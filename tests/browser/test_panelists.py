"""Panelists and badges in Chromium: the host names a panelist in the console, the panelist answers a
question in the room, and every chat line from a host or panelist carries a text badge, in the
room and in the console."""

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
    host.get_by_role("button", name="Edit", exact=True).click()
    host.get_by_label("Panelists").fill(pia["email"])
    host.get_by_role("button", name="Save").click()
    expect(host.locator("#webinar-form")).to_be_hidden()
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

