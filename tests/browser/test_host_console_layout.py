"""The host console on a phone and on a desktop: nothing runs off the side, Send stays in reach."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, screenshot, watch
from tests.browser.test_live_room import host_opens, host_signs_in

pytestmark = pytest.mark.browser

# The elements wider than the window, for the failure message.
OVERFLOWING = """() => [...document.querySelectorAll('body *')]
  .filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5 && e.offsetParent !== null)
  .slice(0, 8).map((e) => `${e.tagName}#${e.id}.${e.className} right=${e.getBoundingClientRect().right}`)"""

# True once the page's height has not changed for half a second (polled until then).
SETTLED = """() => new Promise((done) => {
  const before = document.documentElement.scrollHeight;
  setTimeout(() => done(document.documentElement.scrollHeight === before), 500);
})"""


def no_sideways_scroll(page) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth - innerWidth")
    assert wide <= 0, page.evaluate(OVERFLOWING)


@pytest.mark.parametrize("viewport,name", [(PHONE, "phone"), (DESKTOP, "desktop")])
def test_the_console_fits_the_screen_and_send_is_in_reach(contexts, http, page_errors, viewport, name):
    account = http.host()
    webinar = http.webinar(
        account["access_token"],
        title="A webinar with a rather long title that must wrap on a phone",
        stream_url="https://127.0.0.1:1/live.m3u8",
    )
    http.go_live(account["access_token"], webinar["id"])
    page = watch(contexts(viewport).new_page(), page_errors)
    host_signs_in(page, account)
    no_sideways_scroll(page)
    host_opens(page, "A webinar with a rather long title that must wrap on a phone")
    page.get_by_label("Message", exact=True).fill("Hello from the host's phone")
    send = page.get_by_role("button", name="Send", exact=True)
    # The console may still be filling in above Send (the participant list, the stream's state, live
    # updates): on a loaded machine it moved after the scroll, past a 500 ms pause in its growth.
    # What matters is that scrolling brings Send fully into the screen, as a user scrolls again.
    page.wait_for_function(SETTLED)
    for attempt in range(10):
        send.scroll_into_view_if_needed()
        try:
            expect(send).to_be_in_viewport(ratio=1, timeout=2000)
            break
        except AssertionError:
            if attempt == 9:
                raise
    send.click()
    expect(page.locator("#chat li")).to_contain_text(["Hello from the host's phone"])
    no_sideways_scroll(page)
    screenshot(page, f"host-console-live-{name}")
    for tab in ("Registrants", "Reports"):
        page.get_by_role("tab", name=tab).click()
        no_sideways_scroll(page)
    screenshot(page, f"host-console-reports-{name}")
