"""Small things people notice: no page scrolls sideways on a phone, times name their zone, a full
webinar's form is closed, error pages carry no empty connection pill, and /favicon.ico exists."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, HttpApi, watch

pytestmark = pytest.mark.browser

PAGES = [
    "start",
    "host-sign-in",
    "register",
    "webinar-page",
    "register-full",
    "lobby",
    "room",
    "thank-you",
    "join-link-invalid",
    "reset-password",
]


def page_url(http: HttpApi, kind: str) -> tuple[str, str]:
    """The page's address and a selector that is visible once it has rendered."""
    if kind == "start":
        return "/", "h1"
    if kind == "host-sign-in":
        return "/host", "form"
    if kind == "reset-password":
        return "/reset-password", "main"
    if kind == "join-link-invalid":
        return "/join/nosuchwebinar#token=not-a-token", "#fatal"
    host = http.host()
    token = host["access_token"]
    long_title = "A webinar with a rather long title that must wrap on a phone screen without overflow"
    w = http.webinar(token, title=long_title, capacity=1 if kind == "register-full" else 0)
    if kind in ("register", "register-full"):
        if kind == "register-full":
            http.register(w["id"], "First Person")
        return f"/webinars/{w['id']}/register", "#form"
    if kind == "webinar-page":
        return f"/webinars/{w['id']}", "#form"
    reg = http.register(w["id"], "Ada Lovelace")
    if kind == "lobby":
        return reg["join_url"], "#lobby"
    http.go_live(token, w["id"])
    if kind == "room":
        return reg["join_url"], "#chat-form"
    http.call("POST", f"/api/webinars/{w['id']}/end", {}, token)
    return reg["join_url"], "#rating-form"


@pytest.mark.parametrize("kind", PAGES)
def test_no_page_scrolls_sideways_on_a_phone(kind: str, contexts: Any, http: HttpApi, page_errors: list[str]):
    url, ready = page_url(http, kind)
    page = watch(contexts(PHONE).new_page(), page_errors)
    page.goto(url)
    expect(page.locator(ready).first).to_be_visible()
    widths = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert widths[0] <= widths[1], f"{kind}: scrollWidth {widths[0]} > innerWidth {widths[1]}"
    # an empty pill is never shown
    for pill in page.locator(".pill:visible").all():
        assert pill.inner_text().strip(), f"{kind}: an empty pill is visible"


def test_a_full_webinar_closes_its_form_and_times_name_their_zone(contexts, http, page_errors):
    url, _ = page_url(http, "register-full")
    page = watch(contexts(PHONE).new_page(), page_errors)
    page.goto(url)
    expect(page.locator("#status")).to_have_text("This webinar is full: no seats are left.")
    expect(page.get_by_label("Your name")).to_be_disabled()
    expect(page.get_by_role("button", name="Full: no seats left")).to_be_disabled()
    zone = page.evaluate("new Date().toLocaleTimeString([], {timeZoneName: 'short'}).split(' ').pop()")
    expect(page.locator("#when")).to_contain_text(zone)


def test_the_banner_close_is_a_comfortable_tap_target(contexts, http, page_errors):
    host = http.host()
    w = http.webinar(host["access_token"])
    reg = http.register(w["id"], "Ada Lovelace")
    http.go_live(host["access_token"], w["id"])
    page = watch(contexts(PHONE).new_page(), page_errors)
    page.goto(reg["join_url"])
    expect(page.get_by_test_id("connection")).to_have_text("Live")
    http.call(
        "POST", f"/api/webinars/{w['id']}/announcements", {"text": "Slides are up"}, host["access_token"]
    )
    close = page.get_by_role("button", name="Dismiss announcement")
    expect(close).to_be_visible()
    box = close.bounding_box()
    assert box is not None and box["width"] >= 44 and box["height"] >= 44, box
    for button in page.locator("button:visible").all():
        b = button.bounding_box()
        assert b is not None and b["height"] >= 44 and b["width"] >= 44, (button.inner_text(), b)


def test_favicon_is_served(app):
    with urllib.request.urlopen(app.url + "/favicon.ico", timeout=10) as resp:  # noqa: S310 - loopback
        assert resp.status == 200
        assert resp.headers["Content-Type"] in ("image/vnd.microsoft.icon", "image/x-icon")
        assert resp.read(4) == b"\x00\x00\x01\x00"
