"""What the API could do and the console could not: the participant list with moderation from it
(mute, unmute, ban, unban, kept across a reload), co-hosts, cancelling, the recording URL."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, watch
from tests.browser.test_live_room import host_opens, host_signs_in, join

pytestmark = pytest.mark.browser


def test_moderation_from_the_participant_list_survives_a_reload(contexts, http, page_errors):
    account = http.host()
    webinar = http.webinar(account["access_token"], title="Listed")
    http.go_live(account["access_token"], webinar["id"])
    reg = http.register(webinar["id"], "Max Mouthy")
    host = watch(contexts().new_page(), page_errors)
    host.on("dialog", lambda dialog: dialog.accept())
    host_signs_in(host, account)
    host_opens(host, "Listed")
    max_ = watch(contexts().new_page(), page_errors)
    join(max_, reg["join_url"])

    people = host.get_by_role("list", name="Participants")
    expect(people.locator("li", has_text="Max Mouthy")).to_be_visible()
    people.get_by_role("button", name="Max Mouthy: mute").click()
    expect(people.locator("li", has_text="Max Mouthy")).to_contain_text("muted")
    host.reload()  # the console learns who is muted from the server, not from its memory
    people = host.get_by_role("list", name="Participants")
    expect(people.get_by_role("button", name="Max Mouthy: unmute")).to_be_visible()
    people.get_by_role("button", name="Max Mouthy: unmute").click()
    expect(people.get_by_role("button", name="Max Mouthy: mute")).to_be_visible()

    people.get_by_role("button", name="Max Mouthy: ban").click()
    moderated = host.get_by_role("list", name="Muted or banned")
    expect(moderated.locator("li", has_text="Max Mouthy")).to_contain_text("banned")
    expect(people.locator("li", has_text="Max Mouthy")).to_have_count(0)
    screenshot(host, "host-console-moderation-desktop")
    host.reload()
    moderated = host.get_by_role("list", name="Muted or banned")
    moderated.get_by_role("button", name="Max Mouthy: unban").click()
    expect(moderated).to_have_text("Nobody.")
    max_.reload()  # the page keeps its join token for the tab
    expect(max_.get_by_test_id("connection")).to_have_text("Live")
    expect(host.get_by_role("list", name="Participants").locator("li", has_text="Max Mouthy")).to_be_visible()


def test_cohosts_cancel_and_the_recording_url_from_the_console(contexts, http, page_errors):
    account = http.host()
    cohost = http.host()
    http.webinar(account["access_token"], title="To cancel")
    ended = http.webinar(account["access_token"], title="To record")
    host = watch(contexts().new_page(), page_errors)
    host.on("dialog", lambda dialog: dialog.accept())
    host_signs_in(host, account)

    host.get_by_role("button", name=re.compile("To cancel")).click()
    host.get_by_role("button", name="Edit", exact=True).click()
    host.get_by_label("Co-hosts").fill(cohost["email"])
    host.get_by_role("button", name="Save").click()
    expect(host.locator("#webinar-form")).to_be_hidden()
    host.get_by_role("button", name="Edit", exact=True).click()
    expect(host.get_by_label("Co-hosts")).to_have_value(cohost["email"])
    host.get_by_role("button", name="Cancel", exact=True).click()
    code, listed = http.call("GET", "/api/webinars", token=cohost["access_token"])
    assert code == 200 and "To cancel" in [w["title"] for w in listed["webinars"]], listed
    host.get_by_role("button", name="Cancel webinar").click()
    expect(host.get_by_test_id("webinar-status")).to_have_text("Cancelled")

    http.go_live(account["access_token"], ended["id"])
    code, _ = http.call("POST", f"/api/webinars/{ended['id']}/end", {}, account["access_token"])
    assert code == 200
    host.get_by_role("button", name=re.compile("To record")).click()
    host.get_by_role("tab", name="Reports").click()
    host.get_by_label("Recording URL").fill("https://video.example/replay/42")
    host.get_by_role("button", name="Save and notify registrants").click()
    expect(host.locator("#recording-status")).to_contain_text("Saved")
