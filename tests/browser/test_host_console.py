"""The host console's moderation tools as an attendee experiences them."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, screenshot, watch
from tests.browser.test_live_room import host_opens, host_signs_in, join

pytestmark = pytest.mark.browser


def test_approval_registration_and_question_moderation(contexts, http, page_errors):
    account = http.host()
    webinar = http.webinar(
        account["access_token"], title="Invite only", registration_mode="approval", qa_moderation=True
    )
    host = watch(contexts().new_page(), page_errors)
    host_signs_in(host, account)
    host_opens(host, "Invite only")

    # Registration waits for the host's approval; the host approves in the Registrants tab.
    pat = watch(contexts(PHONE).new_page(), page_errors)
    pat.goto(f"/webinars/{webinar['id']}/register")
    pat.get_by_label("Your name").fill("Pat Pending")
    pat.get_by_label("Email").fill("pat@example.com")
    pat.get_by_role("button", name="Register").click()
    expect(pat.get_by_role("heading", name="Awaiting approval")).to_be_visible()
    screenshot(pat, "register-pending-phone")
    host.get_by_role("tab", name="Registrants").click()
    host.get_by_label("Status").select_option("pending")
    expect(host.locator("#registrants tr")).to_have_count(1)
    host.get_by_role("button", name="Approve Pat Pending").click()
    host.get_by_label("Status").select_option("approved")
    expect(host.locator("#registrants tr")).to_contain_text("approved")
    host.get_by_role("tab", name="Live room").click()

    # Questions wait for approval before other attendees see them; dismissed ones disappear.
    http.go_live(account["access_token"], webinar["id"])
    pending = http.register(webinar["id"], "Quinn Questioner")
    assert pending["status"] == "pending"
    code, reg = http.call(
        "POST",
        f"/api/webinars/{webinar['id']}/registrations/{pending['id']}/approve",
        {},
        account["access_token"],
    )
    assert code == 200 and reg["join_url"], reg
    quinn = watch(contexts().new_page(), page_errors)
    join(quinn, reg["join_url"])
    quinn.get_by_role("tab", name="Q&A").click()
    quinn.get_by_label("Ask the host a question").fill("Is this approved?")
    quinn.get_by_role("button", name="Ask").click()
    expect(quinn.locator("#qa-status")).to_contain_text("once a host approves")
    expect(host.locator("#questions li.pending")).to_contain_text("Is this approved?")
    expect(quinn.locator("#questions li")).to_have_count(0)
    host.get_by_role("button", name="Approve: Is this approved?").click()
    expect(quinn.locator("#questions li")).to_have_text(["▲ 0Is this approved?Quinn Questioner (you)"])
    host.get_by_role("button", name="Dismiss: Is this approved?").click()
    expect(quinn.locator("#questions li")).to_have_count(0)


def test_mute_and_slow_mode_are_explained_to_the_attendee(contexts, http, page_errors):
    account = http.host()
    webinar = http.webinar(account["access_token"], title="Moderated")
    http.go_live(account["access_token"], webinar["id"])
    reg = http.register(webinar["id"], "Max Mouthy")
    host = watch(contexts().new_page(), page_errors)
    host_signs_in(host, account)
    host_opens(host, "Moderated")
    max_ = watch(contexts(PHONE).new_page(), page_errors)
    join(max_, reg["join_url"])

    max_.get_by_label("Message", exact=True).fill("first")
    max_.get_by_role("button", name="Send").click()
    host.get_by_role("button", name="Mute Max Mouthy").click()
    expect(host.get_by_role("button", name="Unmute Max Mouthy")).to_be_visible()
    # told at once, before trying to send: the box closes and says why
    expect(max_.get_by_label("Message", exact=True)).to_be_disabled()
    expect(max_.locator("#muted-note")).to_contain_text("A host has muted you")
    host.get_by_role("button", name="Unmute Max Mouthy").click()
    expect(host.get_by_role("button", name="Mute Max Mouthy")).to_be_visible()
    expect(max_.locator("#muted-note")).to_contain_text("you can chat again")
    max_.get_by_label("Message", exact=True).fill("second")

    host.get_by_label("Slow mode").select_option("30")
    expect(max_.locator("#slow-note")).to_contain_text("one message every 30 s")
    max_.get_by_role("button", name="Send").click()
    expect(max_.locator("#chat li .text")).to_have_text(["first", "second"])
    max_.get_by_label("Message", exact=True).fill("third")
    max_.get_by_role("button", name="Send").click()
    expect(max_.locator("#chat-status")).to_contain_text("Slow mode is on")
    expect(max_.locator("#chat li .text")).to_have_text(["first", "second"])
