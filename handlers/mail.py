"""Email's pages: one-click unsubscribe (RFC 8058) and the development mailbox.

``/unsubscribe/<token>``: GET shows a confirmation page (a mail scanner that follows links changes
nothing); POST (the mail client's one-click ``List-Unsubscribe=One-Click``, or the page's button)
switches that category's email off for the token's user, with no sign-in. An invalid token answers
404 with a page saying so.

``/dev/mailbox``: the mail the server kept instead of sending (no ``SMTP_URL``); the routes exist
only when that mailbox is the transport, which ``MODE=production`` never allows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web
from tornado.escape import linkify
from tornado.template import Loader

from handlers.pages import set_security_headers
from realtime.notifications.mail_compose import CATEGORY_NAMES
from realtime.notifications.unsubscribe import UNSUBSCRIBE_PATH, UnsubscribeLinks
from storage.errors import Refused
from storage.mail import MailStore
from storage.preferences import CATEGORIES, PreferenceStore

TEMPLATES = Loader(str(Path(__file__).resolve().parent / "templates"), autoescape="xhtml_escape")
# The HTML part of a kept mail is shown as its own document: its inline styles, nothing active.
MAIL_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; frame-ancestors 'none'"


class HtmlPage(tornado.web.RequestHandler):
    def set_default_headers(self) -> None:
        set_security_headers(self)
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "text/html; charset=utf-8")

    def check_xsrf_cookie(self) -> None:
        return None  # the token in the URL is the authority; no cookie is involved

    def page(self, template: str, status: int = 200, **context: Any) -> None:
        self.set_status(status)
        self.finish(TEMPLATES.load(template).generate(**context))


class UnsubscribeHandler(HtmlPage):
    def initialize(self, links: UnsubscribeLinks, preferences: PreferenceStore) -> None:
        self.links = links
        self.preferences = preferences

    def _read(self, token: str) -> tuple[str, str] | None:
        try:
            user_id, category = self.links.read(token)
        except Refused as exc:
            self.page("invalid_link.html", 404, message=exc.message)
            return None
        if category not in CATEGORIES:
            self.page("invalid_link.html", 404, message="this unsubscribe link names no known category")
            return None
        return user_id, category

    def get(self, token: str) -> None:
        found = self._read(token)
        if found is not None:
            name = CATEGORY_NAMES.get(found[1], found[1])
            self.page("unsubscribe.html", done=False, category_name=name, action=self.request.path)

    async def post(self, token: str) -> None:
        found = self._read(token)
        if found is None:
            return
        user_id, category = found
        await self.preferences.update(user_id, {category: {"email": False}})
        name = CATEGORY_NAMES.get(category, category)
        self.page("unsubscribe.html", done=True, category_name=name, action=self.request.path)


class MailboxHandler(HtmlPage):
    def initialize(self, store: MailStore) -> None:
        self.store = store

    async def get(self, message_id: str | None = None, part: str | None = None) -> None:
        if message_id is None:
            self.page("mailbox.html", messages=await self.store.latest("mailbox", 100))
            return
        m = await self.store.get(message_id)
        if m is None or m.get("transport") != "mailbox":
            self.page("invalid_link.html", 404, message="there is no such mail in the development mailbox")
            return
        if part == "html":
            self.set_header("Content-Security-Policy", MAIL_CSP)
            self.finish(m["html"])
            return
        self.page("mailbox_message.html", m=m, linkify=linkify)


def routes(
    *, links: UnsubscribeLinks, preferences: PreferenceStore, store: MailStore, mailbox: bool
) -> list[tuple[str, type, dict[str, Any]]]:
    """The unsubscribe route, and the development mailbox's when ``mailbox``."""
    out: list[tuple[str, type, dict[str, Any]]] = [
        (
            UNSUBSCRIBE_PATH + r"/([A-Za-z0-9_.=-]{1,1000})",
            UnsubscribeHandler,
            {"links": links, "preferences": preferences},
        )
    ]
    if mailbox:
        mail_id = r"([0-9a-f]{24})"
        out += [
            (r"/dev/mailbox", MailboxHandler, {"store": store}),
            (r"/dev/mailbox/" + mail_id, MailboxHandler, {"store": store}),
            (r"/dev/mailbox/" + mail_id + r"/(html)", MailboxHandler, {"store": store}),
        ]
    return out
