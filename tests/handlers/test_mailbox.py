"""The development mailbox: with no SMTP_URL mail is kept and shown at /dev/mailbox; in production the
mailbox does not exist."""

import re

import pytest

from tests.api import Api


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


@pytest.mark.gen_test(timeout=60)
async def test_registration_mail_is_kept_in_the_development_mailbox(api, services, http_client, base_url):
    host = await api.host()
    w = await api.webinar(host["access_token"], title="Kept <mail>")
    reg = await api.register(w["id"], "Dee", "dee@example.org")
    stored = await services.db.mail.find_one({"to": "dee@example.org"})
    assert stored["status"] == "sent" and stored["transport"] == "mailbox"

    listing = (await http_client.fetch(base_url + "/dev/mailbox")).body.decode()
    assert "Registration confirmed: Kept &lt;mail&gt;" in listing and "<mail>" not in listing
    href = re.search(r'href="(/dev/mailbox/[0-9a-f]{24})"', listing).group(1)
    page = await http_client.fetch(base_url + href)
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    # The personal join link is a link on the page.
    link = re.search(r'<a href="(http://[^"]+/join/[^"]+)"', page.body.decode()).group(1)
    assert link.split("#token=")[0] == reg["join_url"].split("#token=")[0]
    assert services.tokens.verify(link.split("#token=")[1]).webinar == w["id"]
    html = await http_client.fetch(base_url + href + "/html")
    assert "script-src" not in html.headers["Content-Security-Policy"] and b"Join the webinar" in html.body


@pytest.fixture
def services_env():
    return {}


@pytest.mark.gen_test(timeout=60)
async def test_production_has_no_mailbox(io_loop, make_settings, http_client):
    from server import make_app, open_services

    settings = make_settings(MODE="production", JWT_KEYS="k1:" + "p" * 40)
    services = await open_services(settings)
    try:
        assert services.notifications.mail_transport is None
        app = make_app(services)
        paths = [r.matcher.regex.pattern for r in app.default_router.rules[0].target.rules]
        assert not any(p.startswith("/dev/mailbox") for p in paths)
        assert any(p.startswith("/unsubscribe/") for p in paths)
    finally:
        await services.close()
