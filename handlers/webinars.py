"""Webinars and registrations over REST: thin wrappers over WebinarService."""

from __future__ import annotations

from handlers.api import ApiHandler
from handlers.limits import MINUTE, enforce
from realtime.webinars.views import public_registration, public_webinar


class WebinarsHandler(ApiHandler):
    async def get(self) -> None:
        claims = await self.claims()
        items = await self.call(self.deps.webinars.list_mine(claims))
        self.send({"webinars": [public_webinar(w) for w in items]})

    async def post(self) -> None:
        claims = await self.claims()
        doc = await self.call(self.deps.webinars.create(claims, self.body()))
        self.send(public_webinar(doc), 201)


class WebinarHandler(ApiHandler):
    async def get(self, webinar_id: str) -> None:
        """Public: anyone may read a webinar's page to register."""
        doc = await self.call(self.deps.webinars.webinars.get(webinar_id))
        self.send(public_webinar(doc, private=False))

    async def patch(self, webinar_id: str) -> None:
        claims = await self.claims()
        doc = await self.call(self.deps.webinars.update(claims, webinar_id, self.body()))
        self.send(public_webinar(doc))


class LifecycleHandler(ApiHandler):
    """POST /live, /end, /cancel."""

    async def post(self, webinar_id: str, action: str) -> None:
        claims = await self.claims()
        service = self.deps.webinars
        step = {"live": service.go_live, "end": service.end, "cancel": service.cancel}[action]
        doc = await self.call(step(claims, webinar_id))
        self.send(public_webinar(doc))


class RegistrationsHandler(ApiHandler):
    async def post(self, webinar_id: str) -> None:
        key, rate = f"register:{self.request.remote_ip}", self.deps.settings.registration_rate
        await enforce(self.deps.limits, key, rate, MINUTE, "registrations from this address")
        reg = await self.call(self.deps.webinars.register(webinar_id, self.body()))
        self.send(reg, 201)

    async def get(self, webinar_id: str) -> None:
        claims = await self.claims()
        q = self.get_query_argument("q", None)
        status = self.get_query_argument("status", None)
        regs = await self.call(self.deps.webinars.registrants(claims, webinar_id, q, status))
        self.send({"registrations": [public_registration(r) for r in regs]})


class RegistrationsCsvHandler(ApiHandler):
    async def get(self, webinar_id: str) -> None:
        claims = await self.claims()
        q = self.get_query_argument("q", None)
        text = await self.call(self.deps.reports.registrants_csv(claims, webinar_id, q))
        self.send_csv(text, f"registrants-{webinar_id}.csv")


class RegistrationDecisionHandler(ApiHandler):
    """POST .../registrations/<id>/approve or /reject."""

    async def post(self, webinar_id: str, registration_id: str, decision: str) -> None:
        claims = await self.claims()
        service = self.deps.webinars
        reg = await self.call(service.decide(claims, webinar_id, registration_id, decision == "approve"))
        self.send(reg)


class RegistrationHandler(ApiHandler):
    async def delete(self, webinar_id: str, registration_id: str) -> None:
        claims = await self.claims()
        reg = await self.call(self.deps.webinars.cancel_registration(claims, webinar_id, registration_id))
        self.send(reg)


class OwnRegistrationHandler(ApiHandler):
    async def delete(self, webinar_id: str) -> None:
        """The registrant cancels with their join link's token (the cancel page)."""
        claims = await self.claims()
        self.send(await self.call(self.deps.webinars.cancel_own(claims, webinar_id)))


class JoinLinkHandler(ApiHandler):
    async def post(self, webinar_id: str) -> None:
        """Anyone: mail the personal link again (the same answer for any address)."""
        client = self.request.remote_ip or ""
        self.send(await self.call(self.deps.webinars.request_link(webinar_id, self.body(), client)), 202)
