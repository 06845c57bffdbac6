"""The webinar service: lifecycle, registration, join links, who may do what, and the webinar events.

Every REST handler and RPC method for webinars calls one method here. After an action succeeded it
tells the listeners of :class:`~realtime.webinars.events.WebinarEvents` (notifications) through
:class:`~realtime.webinars.events.Listeners`, where a failing listener is logged and never fails the
action.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from config import Settings
from realtime.auth.tokens import Claims, TokenService
from realtime.engine.channels import backstage, room
from realtime.engine.hub import Hub
from realtime.engine.session import KICKED
from realtime.schema import ident, read
from realtime.webinars.events import Listeners, WebinarEvents
from realtime.webinars.links import JoinLinks
from realtime.webinars.records import Registration, Webinar
from realtime.webinars.schemas import (
    LinkRequest,
    NewRegistration,
    NewWebinar,
    RegistrantsQuery,
    WebinarChanges,
)
from realtime.webinars.views import public_registration, public_webinar
from storage.accounts import Accounts
from storage.errors import Kind, Refused, conflict, forbidden
from storage.history import Entry
from storage.mail import MailStore
from storage.moderation import Moderation
from storage.rate_limits import Limiter
from storage.registrations import Registrations
from storage.webinars import Webinars

log = logging.getLogger("realtime.webinars.service")

STAFF = ("host", "cohost")
SPEAKERS = (*STAFF, "panelist")  # who speaks in the room: chat unpaced, answer questions, a badge
LINK_RATE = 5  # link mails per address and webinar per hour
LINK_CLIENT_RATE = 20  # link requests per client per hour


async def read_history(hub: Hub, channel: str, since: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    """Durable messages of ``channel`` after ``since`` in seq order, as the protocol shows them."""
    entries = await hub.history.read(channel, after=since, limit=limit)
    return [as_message(e) for e in entries]


def as_message(e: Entry) -> dict[str, Any]:
    """A stored message as the protocol shows it."""
    return {"type": e.type, "channel": e.channel, "data": e.data, "ts": e.ts, "seq": e.seq}


def role_in(w: dict[str, Any], user_id: str, is_host_account: bool) -> str | None:
    """``host`` (owner), ``cohost`` or None: the webinar's staff, who run it from the console (host
    accounts only). Panelists and attendees are decided by :meth:`WebinarService.participant`."""
    if not is_host_account:
        return None
    if w["owner_id"] == user_id:
        return "host"
    if user_id in w["cohost_ids"]:
        return "cohost"
    return None


PAST_START_GRACE = timedelta(minutes=5)  # "starts now" typed a minute ago is still accepted


def _not_in_the_past(starts_at: datetime) -> None:
    """409 ``starts_in_the_past`` for a new or moved start more than :data:`PAST_START_GRACE` ago:
    nobody can register for or be reminded of a start that has passed (an unchanged start may lie in
    the past). A conflict with the clock, not the body's form, so not 422: the same body was valid
    when it was written."""
    if starts_at < datetime.now(UTC) - PAST_START_GRACE:
        raise conflict("starts_in_the_past", "starts_at: is in the past; pick a time from now on")


@dataclass(frozen=True)
class Participant:
    """A caller admitted to one webinar, with their role there: ``host``, ``cohost``, ``panelist``
    or ``attendee``, and a host's moderation of them (``banned``, ``muted``; never set for staff).
    A panelist speaks (chat without pace, answers questions, a badge) but runs no host action."""

    user_id: str
    name: str
    role: str
    webinar: dict[str, Any]
    banned: bool = False
    muted: bool = False

    @property
    def staff(self) -> bool:
        return self.role in STAFF

    @property
    def speaker(self) -> bool:
        return self.role in SPEAKERS

    @property
    def webinar_id(self) -> str:
        return str(self.webinar["_id"])


class WebinarService:
    def __init__(
        self,
        settings: Settings,
        webinars: Webinars,
        registrations: Registrations,
        accounts: Accounts,
        tokens: TokenService,
        hub: Hub,
        moderation: Moderation,
        *,
        events: Iterable[WebinarEvents],
        limits: Limiter,
    ) -> None:
        self.settings = settings
        self.webinars = webinars
        self.registrations = registrations
        self.accounts = accounts
        self.tokens = tokens
        self.hub = hub
        self.events = Listeners(events)
        self.moderation = moderation
        self.limits = limits  # the link mails' limits, shared by every process
        self.links = JoinLinks(tokens, settings.base_url)
        self.mail = MailStore(registrations.db)

    # access --------------------------------------------------------------------------------------

    async def participant(self, claims: Claims, webinar_id: Any) -> Participant:
        """The caller's role in the webinar (404 unknown webinar, 403 when not admitted): who may read
        it. Taking part needs :meth:`active_participant`."""
        webinar = await self.webinars.get(ident(webinar_id, "webinar_id"))
        role = role_in(webinar, claims.user_id, claims.is_host)
        if role is not None:
            return Participant(claims.user_id, claims.name, role, webinar)
        name: str | None = None
        panelist = claims.user_id in webinar.get("panelist_ids", [])
        if panelist and claims.is_host:
            name = claims.name  # a host account on the panel needs no registration
        elif claims.role == "attendee" and claims.webinar in (None, webinar["_id"]):
            if claims.user_id.startswith("ext:") and claims.webinar == webinar["_id"]:
                name = claims.name  # integrator-admitted
            else:
                reg = await self.registrations.of_user(webinar["_id"], claims.user_id)
                name = reg["name"] if reg is not None else None
        if name is None:
            raise forbidden("you are not admitted to this webinar")
        flags = await self.moderation.flags(webinar["_id"], claims.user_id)
        role = "panelist" if panelist else "attendee"
        return Participant(claims.user_id, name, role, webinar, flags["banned"], flags["muted"])

    async def active_participant(self, claims: Claims, webinar_id: Any) -> Participant:
        """A participant who may take part (subscribe to the room, chat, ask, upvote, vote, react,
        raise a hand): the one rule for bans, answering 403 ``banned`` on every transport."""
        p = await self.participant(claims, webinar_id)
        if p.banned:
            raise Refused(Kind.FORBIDDEN, "banned", "you are banned from this webinar")
        return p

    async def staff(self, claims: Claims, webinar_id: Any) -> Participant:
        p = await self.participant(claims, webinar_id)
        if not p.staff:
            raise forbidden()
        return p

    # webinars ------------------------------------------------------------------------------------

    async def create(self, claims: Claims, body: dict[str, Any]) -> dict[str, Any]:
        if not claims.is_host:
            raise forbidden("only host accounts create webinars")
        fields = await self._fields(body, creating=True)
        fields.setdefault("slow_mode_seconds", self.settings.slow_mode_default)
        return await self.webinars.create(claims.user_id, fields)

    async def update(self, claims: Claims, webinar_id: Any, body: dict[str, Any]) -> dict[str, Any]:
        p = await self.participant(claims, webinar_id)
        if p.role != "host":
            raise forbidden("only the webinar's host may edit it")
        fields = await self._fields(body, creating=False)
        if not fields:
            return p.webinar
        if fields.get("starts_at", p.webinar["starts_at"]) != p.webinar["starts_at"]:
            _not_in_the_past(fields["starts_at"])
        doc = await self.webinars.update(p.webinar_id, fields)
        await self.hub.publish(room(p.webinar_id), "webinar.updated", public_webinar(doc, private=False))
        if "starts_at" in fields and fields["starts_at"] != p.webinar["starts_at"]:
            await self.events.webinar_rescheduled(Webinar.from_doc(doc))
        return doc

    async def _fields(self, body: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        changes = read(NewWebinar if creating else WebinarChanges, body)
        fields = changes.model_dump(exclude_none=True, exclude={"cohosts", "panelists"})
        if creating:
            _not_in_the_past(fields["starts_at"])
        if changes.cohosts is not None:
            emails = changes.cohosts
            hosts = await self.accounts.find_hosts(emails)
            missing = sorted(set(emails) - {h["email"] for h in hosts})
            if missing:
                # the accounts' state, not the body's form: it may succeed once the account exists
                raise conflict("cohost_not_found", f"cohosts: {missing[0]} has no host account")
            fields["cohost_ids"] = [h["_id"] for h in hosts]
            fields["cohost_emails"] = emails
        if changes.panelists is not None:
            emails = changes.panelists
            users = await self.accounts.find_users(emails)
            missing = sorted(set(emails) - {u["email"] for u in users})
            if missing:
                raise conflict(
                    "panelist_not_found",
                    f"panelists: {missing[0]} has no account; they register for the webinar first",
                )
            fields["panelist_ids"] = [u["_id"] for u in users]
            fields["panelist_emails"] = emails
        return fields

    async def list_mine(self, claims: Claims) -> list[dict[str, Any]]:
        if not claims.is_host:
            raise forbidden("only host accounts list their webinars")
        return await self.webinars.list_for(claims.user_id)

    async def go_live(self, claims: Claims, webinar_id: Any) -> dict[str, Any]:
        p = await self.staff(claims, webinar_id)
        doc = await self.webinars.transition(p.webinar_id, "scheduled", "live")
        # Lobby clients already subscribe to room:<id>; this durable event moves them all in at once.
        await self.hub.publish(room(p.webinar_id), "webinar.live", public_webinar(doc, private=False))
        await self.events.webinar_live(Webinar.from_doc(doc))
        return doc

    async def end(self, claims: Claims, webinar_id: Any) -> dict[str, Any]:
        p = await self.staff(claims, webinar_id)
        doc = await self.webinars.transition(p.webinar_id, "live", "ended")
        await self.hub.publish(room(p.webinar_id), "webinar.ended", public_webinar(doc, private=False))
        await self.events.webinar_ended(Webinar.from_doc(doc))
        return doc

    async def cancel(self, claims: Claims, webinar_id: Any) -> dict[str, Any]:
        p = await self.participant(claims, webinar_id)
        if p.role != "host":
            raise forbidden("only the webinar's host may cancel it")
        doc = await self.webinars.transition(p.webinar_id, "scheduled", "cancelled")
        await self.hub.publish(room(p.webinar_id), "webinar.updated", public_webinar(doc, private=False))
        await self.events.webinar_cancelled(Webinar.from_doc(doc))
        return doc

    # registration --------------------------------------------------------------------------------

    async def register(self, webinar_id: Any, body: dict[str, Any]) -> dict[str, Any]:
        """Anyone may register with name and email; returns the registration with ``join_url`` if approved."""
        new = read(NewRegistration, body)
        webinar = await self.webinars.get(ident(webinar_id, "webinar_id"))
        user = await self.accounts.attendee(new.email, new.name)
        if webinar["status"] in ("ended", "cancelled"):
            raise conflict(f"webinar_{webinar['status']}", f"the webinar is {webinar['status']}")
        try:
            reg = await self.registrations.register(
                webinar, user["_id"], new.email, new.name, timezone=new.timezone
            )
        except Refused as exc:
            if exc.code != "already_registered" or not await self._send_link(webinar, new.email):
                raise
            raise conflict(
                "already_registered", "this email is already registered; we emailed its join link again"
            ) from None
        out = self.render_registration(webinar, reg)
        await self._tell_staff(webinar["_id"], reg)
        await self.events.registration_received(Webinar.from_doc(webinar), Registration.from_doc(reg))
        return out

    async def request_link(self, webinar_id: Any, body: dict[str, Any], client: str) -> dict[str, Any]:
        """Mail the personal link again to a registered address. The answer is the same whether or not
        the address is registered; more than ``LINK_RATE`` requests an hour for one address, or
        ``LINK_CLIENT_RATE`` from one client, answer 429 ``rate_limited`` (for any address)."""
        new = read(LinkRequest, body)
        webinar = await self.webinars.get(ident(webinar_id, "webinar_id"))
        per_address = await self.limits.hit(f"link:{webinar['_id']}:{new.email}", LINK_RATE, 3600)
        per_client = await self.limits.hit(f"link-client:{client}", LINK_CLIENT_RATE, 3600)
        wait = max(per_address, per_client)
        if wait:
            raise Refused(
                Kind.RATE_LIMITED,
                "rate_limited",
                f"too many link requests; retry in {wait} s",
                retry_after=wait,
            )
        await self.events.link_requested(Webinar.from_doc(webinar), new.email)
        return {"status": "sent_if_registered"}

    async def _send_link(self, webinar: dict[str, Any], email: str) -> bool:
        """On registering again: ask for the link of ``email``'s active registration; False when it
        has none or that address asked too often."""
        reg = await self.registrations.by_email(webinar["_id"], email)
        if reg is None or reg["status"] not in ("approved", "pending"):
            return False
        if await self.limits.hit(f"link:{webinar['_id']}:{email}", LINK_RATE, 3600):
            return False
        await self.events.link_requested(Webinar.from_doc(webinar), email)
        return True

    def render_registration(self, webinar: dict[str, Any], reg: dict[str, Any]) -> dict[str, Any]:
        out = public_registration(reg)
        if reg["status"] == "approved":
            out["join_url"] = self.join_url(webinar, reg)
        return out

    def join_url(self, webinar: dict[str, Any], reg: dict[str, Any]) -> str:
        """The personal link (``realtime/webinars/links.py`` holds the rule)."""
        return self.links.join(webinar, reg)

    async def fresh_join_url(self, webinar_id: str, registration_id: str) -> str | None:
        """A new personal link for an approved registration (None otherwise), e.g. after a reschedule."""
        webinar = await self.webinars.get(webinar_id)
        reg = await self.registrations.get(webinar_id, registration_id)
        return self.join_url(webinar, reg) if reg["status"] == "approved" else None

    async def decide(
        self, claims: Claims, webinar_id: Any, registration_id: Any, approve: bool
    ) -> dict[str, Any]:
        p = await self.staff(claims, webinar_id)
        reg = await self.registrations.decide(
            p.webinar_id, ident(registration_id, "registration_id"), approve
        )
        out = self.render_registration(p.webinar, reg)
        await self._tell_staff(p.webinar_id, reg)
        await self.events.registration_decided(Webinar.from_doc(p.webinar), Registration.from_doc(reg))
        return out

    async def cancel_registration(
        self, claims: Claims, webinar_id: Any, registration_id: Any
    ) -> dict[str, Any]:
        """The registrant (with their join token) or a host cancels; the seat is given back."""
        webinar = await self.webinars.get(ident(webinar_id, "webinar_id"))
        reg = await self.registrations.get(webinar["_id"], ident(registration_id, "registration_id"))
        own = reg["user_id"] == claims.user_id and claims.role == "attendee"
        if not own and role_in(webinar, claims.user_id, claims.is_host) is None:
            raise forbidden("only the registrant or a host may cancel this registration")
        return await self._cancel(webinar, reg)

    async def cancel_own(self, claims: Claims, webinar_id: Any) -> dict[str, Any]:
        """The caller's own registration (their join link's token) cancelled: the cancel page."""
        webinar = await self.webinars.get(ident(webinar_id, "webinar_id"))
        reg = None
        if claims.role == "attendee" and claims.webinar in (None, webinar["_id"]):
            reg = await self.registrations.of_user(webinar["_id"], claims.user_id)
        if reg is None:
            raise forbidden("you hold no active registration for this webinar")
        return await self._cancel(webinar, reg)

    async def _cancel(self, webinar: dict[str, Any], reg: dict[str, Any]) -> dict[str, Any]:
        """Cancel ``reg``: its link ends (``Registrations.link_ended``, checked on every process) and
        the registrant's connections to the room close on every process with 4003."""
        reg = await self.registrations.cancel(webinar["_id"], reg["_id"])
        await self.hub.kick(room(webinar["_id"]), reg["user_id"], KICKED, "registration cancelled")
        await self._tell_staff(webinar["_id"], reg)
        await self.events.registration_cancelled(Webinar.from_doc(webinar), Registration.from_doc(reg))
        return public_registration(reg)

    async def _tell_staff(self, webinar_id: str, reg: dict[str, Any]) -> None:
        """The hosts' consoles (``backstage:<id>``, staff only) see each registration change live:
        a new one (``pending`` awaits their approval), a decision, a cancel. Never fails the change:
        the registrant list shows it on its next load."""
        try:
            await self.hub.publish(backstage(webinar_id), "registration.updated", public_registration(reg))
        except Exception:
            log.exception("registration %s: the hosts' consoles were not told", reg["_id"])

    async def registrants(
        self, claims: Claims, webinar_id: Any, q: str | None, status: str | None
    ) -> list[dict[str, Any]]:
        p = await self.staff(claims, webinar_id)
        query = read(RegistrantsQuery, {"q": q, "status": status})
        regs = await self.registrations.search(p.webinar_id, query.q, query.status)
        undeliverable = await self.mail.suppressed(r["email"] for r in regs)
        return [{**r, "email_undeliverable": r["email"].lower() in undeliverable} for r in regs]


def require_live(p: Participant, action: str = "do that") -> None:
    """409 unless the webinar is live: ``not_live`` before, ``webinar_ended``/``webinar_cancelled`` after."""
    status = p.webinar["status"]
    if status == "live":
        return
    code = {"scheduled": "not_live", "ended": "webinar_ended", "cancelled": "webinar_cancelled"}[status]
    raise Refused(Kind.CONFLICT, code, f"cannot {action}: the webinar is {status}")
