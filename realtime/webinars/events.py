"""The webinar events other parts of the product act on (notifications implement them).

The webinar services tell :class:`WebinarEvents` what happened, after their own write succeeded and
the room heard of it. Listeners receive records (``realtime.webinars.records``), never API dicts.
:class:`Listeners` is what the services hold: it awaits every listener in order, and a listener that
raises is logged and skipped, so an event never fails the action that caused it. A listener that
must not act twice on a repeated event (a retried request) keeps its own idempotency key.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from realtime.webinars.records import Announcement, Question, Registration, Webinar

log = logging.getLogger("realtime.webinars.events")


class WebinarEvents(Protocol):
    async def registration_received(self, webinar: Webinar, registration: Registration) -> None:
        """Someone registered: ``registration.status`` is ``approved`` (open webinar) or ``pending``."""

    async def registration_decided(self, webinar: Webinar, registration: Registration) -> None:
        """A host approved (``approved``) or rejected (``rejected``) a pending registration."""

    async def registration_cancelled(self, webinar: Webinar, registration: Registration) -> None:
        """The registrant (from their link) or a host cancelled the registration; its link ended."""

    async def webinar_live(self, webinar: Webinar) -> None:
        """The webinar went live."""

    async def webinar_ended(self, webinar: Webinar) -> None:
        """The host ended the live webinar."""

    async def webinar_rescheduled(self, webinar: Webinar) -> None:
        """The start time changed; ``webinar.starts_at`` is the new one."""

    async def webinar_cancelled(self, webinar: Webinar) -> None:
        """The host cancelled the (scheduled) webinar."""

    async def announcement_made(self, webinar: Webinar, announcement: Announcement) -> None:
        """A banner went to the room (backstage announcements are not events)."""

    async def question_answered(self, webinar: Webinar, question: Question) -> None:
        """A host marked a question answered (typed answer, or ``question.answer`` None: answered live)."""

    async def link_requested(self, webinar: Webinar, email: str) -> None:
        """Someone asked for the personal link of ``email``'s registration again; told for any address
        (registered or not), so that what the request does never depends on it."""


class Listeners:
    """Every listener of the webinar events, as one :class:`WebinarEvents`."""

    def __init__(self, listeners: Iterable[WebinarEvents] = ()) -> None:
        self._listeners = tuple(listeners)

    async def registration_received(self, webinar: Webinar, registration: Registration) -> None:
        await self._each("registration_received", lambda e: e.registration_received(webinar, registration))

    async def registration_decided(self, webinar: Webinar, registration: Registration) -> None:
        await self._each("registration_decided", lambda e: e.registration_decided(webinar, registration))

    async def registration_cancelled(self, webinar: Webinar, registration: Registration) -> None:
        await self._each("registration_cancelled", lambda e: e.registration_cancelled(webinar, registration))

    async def webinar_live(self, webinar: Webinar) -> None:
        await self._each("webinar_live", lambda e: e.webinar_live(webinar))

    async def webinar_ended(self, webinar: Webinar) -> None:
        await self._each("webinar_ended", lambda e: e.webinar_ended(webinar))

    async def webinar_rescheduled(self, webinar: Webinar) -> None:
        await self._each("webinar_rescheduled", lambda e: e.webinar_rescheduled(webinar))

    async def webinar_cancelled(self, webinar: Webinar) -> None:
        await self._each("webinar_cancelled", lambda e: e.webinar_cancelled(webinar))

    async def announcement_made(self, webinar: Webinar, announcement: Announcement) -> None:
        await self._each("announcement_made", lambda e: e.announcement_made(webinar, announcement))

    async def question_answered(self, webinar: Webinar, question: Question) -> None:
        await self._each("question_answered", lambda e: e.question_answered(webinar, question))

    async def link_requested(self, webinar: Webinar, email: str) -> None:
        await self._each("link_requested", lambda e: e.link_requested(webinar, email))

    async def _each(self, event: str, deliver: Callable[[WebinarEvents], Awaitable[None]]) -> None:
        for listener in self._listeners:
            try:
                await deliver(listener)
            except Exception:
                log.exception("webinar event %s: %s failed", event, type(listener).__name__)
