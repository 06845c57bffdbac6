"""The stage video says what is going on: waiting for the host, an unreachable stream retrying (with
hls.js and with the browser's own HLS), the end with the replay link; the host previews it first."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import watch
from tests.browser.test_live_room import host_opens, host_signs_in, join

pytestmark = pytest.mark.browser

# Nothing listens on port 1: the stream fails fast, as a stream not started yet or unreachable does.
UNREACHABLE = "https://127.0.0.1:1/live/stream.m3u8"


def player_state(page, root: str):
    return page.locator(f"{root} [data-testid=player-state]")


def test_an_unreachable_stream_says_so_in_the_preview_and_the_room(contexts, http, page_errors):
    account = http.host()
    webinar = http.webinar(account["access_token"], title="Broken stream", stream_url=UNREACHABLE)
    host = watch(contexts().new_page(), page_errors)
    host_signs_in(host, account)
    host_opens(host, "Broken stream")
    # before going live the host already sees that the stream cannot be reached
    expect(player_state(host, "#preview")).to_contain_text("cannot be reached. Retrying", timeout=20_000)
    expect(host.locator("#preview")).to_have_attribute("data-state", "retrying")

    http.go_live(account["access_token"], webinar["id"])
    reg = http.register(webinar["id"], "Rita Room")
    rita = watch(contexts().new_page(), page_errors)
    join(rita, reg["join_url"])
    expect(player_state(rita, "#player")).to_contain_text("cannot be reached. Retrying", timeout=20_000)


def test_the_browsers_own_hls_reports_an_unreachable_stream_too(contexts, http, page_errors):
    account = http.host()
    webinar = http.webinar(account["access_token"], title="Native HLS", stream_url=UNREACHABLE)
    http.go_live(account["access_token"], webinar["id"])
    reg = http.register(webinar["id"], "Nat Native")
    context = contexts()
    # without hls.js the page falls back to the browser's own HLS where it has one
    context.route("**/static/vendor/hls/hls.min.js", lambda route: route.fulfill(status=200, body=""))
    page = watch(context.new_page(), page_errors)
    join(page, reg["join_url"])
    native = page.evaluate("document.createElement('video').canPlayType('application/vnd.apple.mpegurl')")
    expected = "cannot be reached. Retrying" if native else "This browser cannot play the stream."
    expect(player_state(page, "#player")).to_contain_text(expected, timeout=20_000)


def test_the_preview_waits_for_a_stream_and_says_when_the_webinar_ended(contexts, http, page_errors):
    account = http.host()
    http.webinar(account["access_token"], title="No stream yet")
    host = watch(contexts().new_page(), page_errors)
    host.on("dialog", lambda dialog: dialog.accept())
    host_signs_in(host, account)
    host_opens(host, "No stream yet")
    expect(player_state(host, "#preview")).to_have_text("Waiting for the host to start the stream.")
    host.get_by_role("button", name="Go live").click()
    host.get_by_role("button", name="End webinar").click()
    expect(player_state(host, "#preview")).to_contain_text("The webinar has ended.")


def test_an_http_stream_url_is_refused_with_the_reason(http):
    account = http.host()
    code, body = http.call(
        "POST",
        "/api/webinars",
        {
            "title": "Plain",
            "starts_at": "2099-01-01T10:00:00Z",
            "timezone": "UTC",
            "duration_minutes": 30,
            "stream_url": "http://cdn.example/live.m3u8",
        },
        account["access_token"],
    )
    assert code == 422, body
    assert body["error"]["code"] == "invalid", body
    assert body["error"]["message"].startswith("stream_url: must be an https URL"), body
