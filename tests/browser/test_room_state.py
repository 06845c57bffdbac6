"""An attendee's own state in the room survives a reload and follows the host at once, in Chromium:
the poll vote, the raised hand (also when a host lowers it), a host's mute, a dismissed banner, and
"My questions" with a pending one withdrawn."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, watch

pytestmark = pytest.mark.browser


def live_room(http: Any, **fields: Any) -> tuple[str, str, dict[str, Any]]:
    """A host token, a live webinar's id, and one attendee's registration (with ``join_url``)."""
    token = http.host()["access_token"]
    wid = http.webinar(token, **fields)["id"]
    reg = http.register(wid, "Ann Attendee")
    http.go_live(token, wid)
    return token, wid, reg


def join(page: Any, join_url: str) -> None:
    page.goto(join_url)
    expect(page.locator("#live")).to_be_visible()
    expect(page.get_by_test_id("connection")).to_have_text("Live")


def reload(page: Any) -> None:
    page.reload()
    expect(page.locator("#live")).to_be_visible()
    expect(page.get_by_test_id("connection")).to_have_text("Live")


def hands(http: Any, token: str, wid: str) -> list[str]:
    code, body = http.call("GET", f"/api/webinars/{wid}/hands", token=token)
    assert code == 200, body
    return [h["name"] for h in body["hands"]]


def test_reload_mid_poll_keeps_my_vote_and_offers_no_second_one(http, contexts, page_errors):
    token, wid, reg = live_room(http)
    poll = {"question": "Which feature first?", "options": ["Polls", "Reports"]}
    code, created = http.call("POST", f"/api/webinars/{wid}/polls", poll, token)
    assert code == 201, created
    for action in ("open", "show_results"):
        assert http.call("POST", f"/api/webinars/{wid}/polls/{created['id']}/{action}", {}, token)[0] == 200
    ann = watch(contexts().new_page(), page_errors)
    join(ann, reg["join_url"])
    ann.get_by_role("tab", name="Polls").click()
    ann.get_by_label("Reports").check()
    ann.get_by_role("button", name="Vote").click()
    card = ann.locator("#polls .poll")
    expect(card).to_contain_text("Thanks, your vote is in.")
    expect(card.locator(".option.chosen")).to_contain_text("Reports")

    reload(ann)
    expect(ann.get_by_role("tab", name="Polls")).to_have_attribute("aria-selected", "true")  # kept
    expect(card.locator(".option.chosen")).to_contain_text("Reports · your vote")
    expect(ann.get_by_label("Reports")).to_be_checked()
    expect(ann.get_by_role("button", name="Vote")).to_have_count(0)
    expect(card.get_by_test_id("poll-result").nth(1)).to_have_text("1 (100%)")
    code, body = http.call("GET", f"/api/webinars/{wid}/polls", token=token)
    assert body["polls"][0]["counts"] == {"0": 0, "1": 1}
    screenshot(ann, "room-poll-after-reload")


def test_reload_mid_hand_shows_the_raised_hand(http, contexts, page_errors):
    token, wid, reg = live_room(http)
    ann = watch(contexts().new_page(), page_errors)
    join(ann, reg["join_url"])
    ann.get_by_role("button", name="✋ Raise hand").click()
    expect(ann.locator("#hand")).to_have_text("✋ Lower hand")
    assert hands(http, token, wid) == ["Ann Attendee"]
    reload(ann)
    expect(ann.locator("#hand")).to_have_text("✋ Lower hand")
    expect(ann.locator("#hand")).to_have_attribute("aria-pressed", "true")
    ann.get_by_role("button", name="✋ Lower hand").click()
    expect(ann.locator("#hand")).to_have_text("✋ Raise hand")
    assert hands(http, token, wid) == []


def test_a_host_lowering_my_hand_flips_the_button_and_one_click_raises_it_again(http, contexts, page_errors):
    token, wid, reg = live_room(http)
    ann = watch(contexts().new_page(), page_errors)
    join(ann, reg["join_url"])
    ann.get_by_role("button", name="✋ Raise hand").click()
    expect(ann.locator("#hand")).to_have_text("✋ Lower hand")
    body = {"action": "lower", "user_id": reg["user_id"]}
    assert http.call("POST", f"/api/webinars/{wid}/hands", body, token)[0] == 200
    expect(ann.locator("#hand")).to_have_text("✋ Raise hand")
    expect(ann.locator("#hand-status")).to_have_text("A host lowered your hand.")
    ann.get_by_role("button", name="✋ Raise hand").click()
    expect(ann.locator("#hand")).to_have_text("✋ Lower hand")
    assert hands(http, token, wid) == ["Ann Attendee"]


def test_a_muted_attendee_sees_the_chat_box_closed_at_once_and_after_a_reload(http, contexts, page_errors):
    token, wid, reg = live_room(http)
    ann = watch(contexts().new_page(), page_errors)
    join(ann, reg["join_url"])
    box = ann.get_by_label("Message", exact=True)
    expect(box).to_be_enabled()
    moderation = f"/api/webinars/{wid}/moderation"
    assert http.call("POST", moderation, {"user_id": reg["user_id"], "action": "mute"}, token)[0] == 200
    expect(box).to_be_disabled()
    expect(ann.get_by_role("button", name="Send")).to_be_disabled()
    expect(ann.get_by_test_id("muted-note")).to_contain_text("A host has muted you")
    reload(ann)
    expect(box).to_be_disabled()
    expect(ann.get_by_test_id("muted-note")).to_contain_text("A host has muted you")
    screenshot(ann, "room-muted")
    assert http.call("POST", moderation, {"user_id": reg["user_id"], "action": "unmute"}, token)[0] == 200
    expect(box).to_be_enabled()
    expect(ann.get_by_test_id("muted-note")).to_contain_text("you can chat again")
    box.fill("Thanks!")
    ann.get_by_role("button", name="Send").click()
    expect(ann.locator("#chat li .text")).to_have_text(["Thanks!"])


def test_a_dismissed_banner_stays_dismissed_and_the_history_keeps_it(http, contexts, page_errors):
    token, wid, reg = live_room(http)
    ann = watch(contexts().new_page(), page_errors)
    join(ann, reg["join_url"])
    for text in ("Doors open", "Slides are up"):
        assert http.call("POST", f"/api/webinars/{wid}/announcements", {"text": text}, token)[0] == 201
        expect(ann.get_by_test_id("announcement")).to_contain_text(text)
    ann.get_by_role("button", name="Dismiss announcement").click()
    expect(ann.get_by_test_id("announcement")).to_be_hidden()
    reload(ann)
    expect(ann.locator("#announcement-history")).to_be_visible()
    ann.locator("#announcement-history summary").click()
    expect(ann.locator("#announcements li")).to_have_count(2)
    expect(ann.locator("#announcements li").first).to_contain_text("Slides are up")
    expect(ann.get_by_test_id("announcement")).to_be_hidden()
    # a new one shows
    assert http.call("POST", f"/api/webinars/{wid}/announcements", {"text": "Q&A now"}, token)[0] == 201
    expect(ann.get_by_test_id("announcement")).to_contain_text("Q&A now")


def test_my_pending_question_is_listed_with_its_state_and_can_be_withdrawn(http, contexts, page_errors):
    token, wid, reg = live_room(http, qa_moderation=True)
    ann = watch(contexts().new_page(), page_errors)
    join(ann, reg["join_url"])
    ann.get_by_role("tab", name="Q&A").click()
    ann.get_by_label("Ask the host a question").fill("Is there a replay?")
    ann.get_by_role("button", name="Ask").click()
    mine = ann.locator("#my-questions li")
    expect(mine).to_have_count(1)
    expect(mine.get_by_test_id("my-question-state")).to_have_text("Waiting for a host's approval")
    expect(ann.locator("#questions li")).to_have_count(0)
    reload(ann)
    ann.get_by_role("tab", name="Q&A").click()
    expect(mine.get_by_test_id("my-question-state")).to_have_text("Waiting for a host's approval")
    code, body = http.call("GET", f"/api/webinars/{wid}/questions", token=token)
    qid = body["questions"][0]["id"]
    assert http.call("POST", f"/api/webinars/{wid}/questions/{qid}/approve", {}, token)[0] == 200
    expect(mine.get_by_test_id("my-question-state")).to_have_text("Open")
    expect(ann.get_by_role("button", name="Your question: Is there a replay?")).to_be_disabled()
    ann.get_by_role("button", name="Withdraw: Is there a replay?").click()
    expect(mine.get_by_test_id("my-question-state")).to_have_text("Withdrawn")
    expect(ann.locator("#questions li")).to_have_count(0)
    screenshot(ann, "room-my-questions")
