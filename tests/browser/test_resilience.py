"""Network drops and removals: what an attendee sees, and that nothing is lost or shown twice."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, watch
from tests.browser.test_live_room import host_opens, host_signs_in, join

pytestmark = pytest.mark.browser


def live_webinar(http, title: str):
    host = http.host()
    webinar = http.webinar(host["access_token"], title=title)
    http.go_live(host["access_token"], webinar["id"])
    return host, webinar


def test_offline_attendee_gets_every_missed_message_once_in_order(contexts, http, page_errors):
    host_account, webinar = live_webinar(http, "Resume test")
    reg = http.register(webinar["id"], "Olga Offline")
    host = watch(contexts().new_page(), page_errors)
    host_signs_in(host, host_account)
    host_opens(host, "Resume test")
    context = contexts(PHONE)
    olga = watch(context.new_page(), page_errors)
    join(olga, reg["join_url"])

    host.get_by_label("Message", exact=True).fill("before the drop")
    host.get_by_role("button", name="Send").click()
    # 15 s, not Playwright's 5: the first message of a freshly joined page missed 5 s once in a whole
    # suite run (not reproduced alone); a lost message still fails here
    expect(olga.locator("#chat li .text")).to_have_text(["before the drop"], timeout=15_000)

    context.set_offline(True)
    expect(olga.get_by_test_id("connection")).to_contain_text("Offline")
    for n in (1, 2, 3):
        host.get_by_label("Message", exact=True).fill(f"missed {n}")
        host.get_by_role("button", name="Send").click()
        expect(host.locator("#chat li .text").last).to_have_text(f"missed {n}")
    host.get_by_label("Announcement").fill("Announced while you were away")
    host.get_by_role("button", name="Broadcast").click()
    expect(host.locator("#live-status")).to_contain_text("Announced while you were away")
    expect(olga.locator("#chat li .text")).to_have_text(["before the drop"])  # really cut off

    context.set_offline(False)
    expect(olga.get_by_test_id("connection")).to_have_text("Live", timeout=20_000)
    expected = ["before the drop", "missed 1", "missed 2", "missed 3"]
    expect(olga.locator("#chat li .text")).to_have_text(expected)
    expect(olga.get_by_test_id("announcement")).to_contain_text("Announced while you were away")

    # A reload starts from the snapshot: still each line once, in order.
    olga.reload()
    expect(olga.get_by_test_id("connection")).to_have_text("Live")
    expect(olga.locator("#chat li .text")).to_have_text(expected)

    # And a second drop resumes from the new position, not from the start.
    context.set_offline(True)
    expect(olga.get_by_test_id("connection")).to_contain_text("Offline")
    host.get_by_label("Message", exact=True).fill("missed 4")
    host.get_by_role("button", name="Send").click()
    context.set_offline(False)
    expect(olga.locator("#chat li .text")).to_have_text([*expected, "missed 4"], timeout=20_000)


def test_ban_removes_the_attendee(contexts, http, page_errors):
    host_account, webinar = live_webinar(http, "Ban test")
    bad = http.register(webinar["id"], "Mallory Mean")
    good = http.register(webinar["id"], "Gina Good")
    host = watch(contexts().new_page(), page_errors)
    host.on("dialog", lambda dialog: dialog.accept())
    host_signs_in(host, host_account)
    host_opens(host, "Ban test")
    mallory = watch(contexts().new_page(), page_errors)
    gina = watch(contexts(PHONE).new_page(), page_errors)
    join(mallory, bad["join_url"])
    join(gina, good["join_url"])

    mallory.get_by_label("Message", exact=True).fill("spam spam spam")
    mallory.get_by_role("button", name="Send").click()
    expect(host.locator("#chat li .text")).to_have_text(["spam spam spam"])

    host.get_by_role("button", name="Ban Mallory Mean").click()
    expect(mallory.get_by_role("alert")).to_contain_text("removed from this webinar")
    expect(mallory.locator("#live")).to_be_hidden()
    host.get_by_role("button", name="Delete message from Mallory Mean").click()
    expect(gina.locator("#chat li")).to_have_count(0)
    expect(host.get_by_test_id("live-count")).to_have_text("2")

    # Coming back with the same link does not get them in again.
    mallory.reload()
    expect(mallory.get_by_role("alert")).to_contain_text("removed from this webinar")
    expect(mallory.locator("#live")).to_be_hidden()

    # Gina is unaffected.
    gina.get_by_label("Message", exact=True).fill("still here")
    gina.get_by_role("button", name="Send").click()
    expect(host.locator("#chat li .text")).to_have_text(["still here"])
