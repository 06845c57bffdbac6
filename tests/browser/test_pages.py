"""Pages, headers and the error states a person sees (no live room needed)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, watch

pytestmark = pytest.mark.browser


def test_pages_carry_a_strict_content_security_policy(contexts, page_errors):
    page = watch(contexts().new_page(), page_errors)
    for path in ("/", "/host", "/webinars/w1/register", "/webinars/w1", "/join/w1", "/static/js/room.js"):
        response = page.request.get(path)
        assert response.status == 200, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    page.goto("/")
    expect(page.get_by_role("link", name=re.compile("Host console"))).to_be_visible()


def test_join_link_errors_are_shown_to_the_person(contexts, http, page_errors):
    host = http.host()
    webinar = http.webinar(host["access_token"])
    page = watch(contexts(PHONE).new_page(), page_errors)

    page.goto(f"/join/{webinar['id']}")
    expect(page.get_by_role("alert")).to_contain_text("join link is incomplete")

    page.goto("about:blank")  # a fragment-only change would not load the page again
    page.goto(f"/join/{webinar['id']}#token=not-a-token")
    expect(page.get_by_role("alert")).to_contain_text("not valid")

    reg = http.register(webinar["id"], "Otto Other")
    other = http.webinar(host["access_token"], title="Another one")
    page.goto("about:blank")
    page.goto(reg["join_url"].replace(webinar["id"], other["id"]))
    expect(page.get_by_role("alert")).to_contain_text("does not admit you")


def test_registration_refusals_are_shown(contexts, http, page_errors):
    host = http.host()
    webinar = http.webinar(host["access_token"], capacity=1)
    page = watch(contexts(PHONE).new_page(), page_errors)
    page.goto(f"/webinars/{webinar['id']}/register")
    expect(page.get_by_role("button", name="Register")).to_be_enabled()
    http.register(webinar["id"], "First Person")  # the last seat goes while the page is open
    page.get_by_label("Your name").fill("Late Comer")
    page.get_by_label("Email").fill("late@example.com")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_contain_text("full")

    page.goto("/webinars/nope/register")
    expect(page.get_by_role("alert")).to_contain_text("no such webinar")


def test_server_unreachable_is_shown(contexts, http, page_errors):
    host = http.host()
    webinar = http.webinar(host["access_token"])
    reg = http.register(webinar["id"], "Nora Net")
    context = contexts()
    page = watch(context.new_page(), page_errors)
    page.goto(f"/webinars/{webinar['id']}/register")
    context.set_offline(True)
    page.get_by_label("Your name").fill("Nora Net")
    page.get_by_label("Email").fill("nora2@example.com")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_contain_text("cannot be reached")
    context.set_offline(False)
    assert reg["join_url"]
