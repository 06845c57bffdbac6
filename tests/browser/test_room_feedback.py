"""The room as its readers use it: the chat keeps their place, badges hosts and explains its limits;
reactions count every tap and float away; the chat box is on a phone's first screen."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, HttpApi, screenshot, watch

pytestmark = pytest.mark.browser


def live_room(http: HttpApi) -> tuple[dict[str, Any], str, dict[str, Any]]:
    host = http.host()
    w = http.webinar(host["access_token"])
    reg = http.register(w["id"], "Ada Lovelace")
    http.go_live(host["access_token"], w["id"])
    return host, w["id"], reg


def host_says(http: HttpApi, host: dict[str, Any], wid: str, text: str) -> None:
    code, body = http.call("POST", f"/api/webinars/{wid}/chat", {"text": text}, host["access_token"])
    assert code in (200, 201), body


def open_room(page: Any, reg: dict[str, Any]) -> None:
    page.goto(reg["join_url"])
    expect(page.locator("#live")).to_be_visible()
    expect(page.get_by_test_id("connection")).to_have_text("Live")


def test_chat_keeps_the_readers_place_and_badges_hosts(contexts, http, page_errors):
    host, wid, reg = live_room(http)
    page = watch(contexts(DESKTOP).new_page(), page_errors)
    open_room(page, reg)
    for i in range(40):
        host_says(http, host, wid, f"line {i}")
    expect(page.locator("#chat li")).to_have_count(40)
    chat = page.locator("#chat")
    at_end = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 40"
    page.wait_for_function(f"({at_end})(document.querySelector('#chat'))")  # following the newest
    expect(page.locator("#chat li").first.get_by_test_id("role-badge")).to_have_text("Host")

    chat.evaluate("el => { el.scrollTop = 0; }")  # the reader goes back to older messages
    host_says(http, host, wid, "while you read")
    expect(page.locator("#chat li")).to_have_count(41)
    assert chat.evaluate("el => el.scrollTop") == 0  # the list did not jump
    newer = page.locator("#chat-newer")
    expect(newer).to_have_text(re.compile("1 new message"))
    newer.click()
    page.wait_for_function(f"({at_end})(document.querySelector('#chat'))")
    expect(newer).to_be_hidden()

    # an attendee's own message has no badge
    page.get_by_role("textbox", name="Message").fill("hello from Ada")
    page.get_by_role("button", name="Send").click()
    mine = page.locator("#chat li", has_text="hello from Ada")
    expect(mine).to_be_visible()
    expect(mine.get_by_test_id("role-badge")).to_have_count(0)


def test_chat_refuses_clearly_what_it_cannot_send(contexts, http, page_errors):
    host, wid, reg = live_room(http)
    page = watch(contexts(DESKTOP).new_page(), page_errors)
    open_room(page, reg)
    box = page.get_by_role("textbox", name="Message")
    box.fill("x" * 600)  # a paste over the limit is kept whole, not cut
    assert len(box.input_value()) == 600
    expect(page.locator("#chat-count")).to_have_text("600 / 500")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat-status")).to_contain_text("the limit is 500")
    expect(page.locator("#chat li")).to_have_count(0)
    assert len(box.input_value()) == 600

    code, _ = http.call("PUT", f"/api/webinars/{wid}/slow-mode", {"seconds": 30}, host["access_token"])
    assert code == 200
    expect(page.locator("#slow-note")).to_be_visible()
    box.fill("first")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#chat li", has_text="first")).to_be_visible()
    box.fill("second")
    page.get_by_role("button", name="Send").click()
    status = page.locator("#chat-status")
    expect(status).to_contain_text(re.compile(r"Slow mode is on: a message at a time\. Try again in \d+ s\."))
    assert "slow mode:" not in status.inner_text()  # not the server's raw sentence


def test_reactions_count_every_tap_and_float_away(contexts, http, page_errors):
    _, _, reg = live_room(http)
    page = watch(contexts(DESKTOP).new_page(), page_errors)
    open_room(page, reg)
    thumbs = page.get_by_role("button", name="React 👍")
    for _ in range(3):
        thumbs.click()
    expect(page.locator("#reaction-feed")).to_have_text("👍 3")
    expect(page.locator(".floating-reaction").first).to_be_attached()
    expect(page.locator(".floating-reaction")).to_have_count(0)  # they fade and go


def test_chat_box_is_on_a_phones_first_screen(contexts, http, page_errors):
    host, wid, reg = live_room(http)
    page = watch(contexts(PHONE).new_page(), page_errors)
    open_room(page, reg)
    for i in range(30):
        host_says(http, host, wid, f"message number {i} with a few words in it")
    expect(page.locator("#chat li")).to_have_count(30)
    box = page.get_by_role("textbox", name="Message").bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"], box
    screenshot(page, "room-phone")
    page.keyboard.press("Tab")  # the first Tab reaches the skip link, which leads to the chat box
    expect(page.get_by_role("link", name="Skip to the chat box")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()


def test_room_at_desktop_width(contexts, http, page_errors):
    host, wid, reg = live_room(http)
    page = watch(contexts(DESKTOP).new_page(), page_errors)
    open_room(page, reg)
    for i in range(8):
        host_says(http, host, wid, f"welcome, everyone ({i})")
    expect(page.locator("#chat li")).to_have_count(8)
    screenshot(page, "room-desktop")
