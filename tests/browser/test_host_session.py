"""The host's session across sign-out, reloads and tabs: kept safely (the refresh token in an
HttpOnly cookie, the access token in memory), and the console's place kept in the address."""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import watch

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def signed_in(page) -> None:
    expect(page.get_by_role("heading", name="Your webinars")).to_be_visible()


def test_sign_out_and_in_again_a_second_tab_and_a_reload_keep_the_session(contexts, http, page_errors):
    email = f"host-{secrets.token_hex(4)}@example.com"
    context = contexts()
    page = watch(context.new_page(), page_errors)
    page.goto("/host")
    page.get_by_role("button", name="No account yet? Create one").click()
    page.get_by_label("Your name").fill("Sam Session")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    signed_in(page)

    # Nothing a script can read holds a token: not the storage, not the cookies it sees.
    readable = page.evaluate("JSON.stringify([{...sessionStorage}, {...localStorage}, document.cookie])")
    assert "eyJ" not in readable and "host_refresh" not in readable, readable

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    signed_in(page)

    code, tokens = http.call("POST", "/api/auth/login", {"email": email, "password": PASSWORD})
    assert code == 200, tokens
    webinar = http.webinar(tokens["access_token"], title="Kept in place")
    page.reload()
    signed_in(page)
    page.get_by_role("button", name=re.compile("Kept in place")).click()
    page.get_by_role("tab", name="Registrants").click()
    expect(page).to_have_url(re.compile(rf"#webinar={webinar['id']}&tab=registrants$"))

    # A reload mid-webinar comes back to the same webinar and tab.
    page.reload()
    expect(page.locator("#w-title")).to_have_text("Kept in place")
    expect(page.get_by_role("tab", name="Registrants")).to_have_attribute("aria-selected", "true")

    # Two more tabs at once: neither asks for a sign-in, and their refreshes do not collide (a
    # reused refresh token would end the session of every tab).
    tabs = [watch(context.new_page(), page_errors) for _ in range(2)]
    for tab in tabs:
        tab.goto(f"/host#webinar={webinar['id']}")
    for tab in (*tabs, page):
        tab.reload()
    for tab in (*tabs, page):
        expect(tab.locator("#w-title")).to_have_text("Kept in place")
        expect(tab.get_by_role("heading", name="Sign in")).to_be_hidden()

    # Signing out ends the session in every tab, and a new tab asks to sign in.
    page.get_by_role("button", name="Sign out").click()
    for tab in tabs:
        expect(tab.get_by_role("heading", name="Sign in")).to_be_visible()
    fresh = watch(context.new_page(), page_errors)
    fresh.goto("/host")
    expect(fresh.get_by_role("heading", name="Sign in")).to_be_visible()
