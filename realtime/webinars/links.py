"""Personal links into a webinar: the one rule for where a person lands.

- An approved registrant: their join link, ``/join/<id>#token=<jwt>`` (the token rides in the
  fragment so it never reaches a server log). It must keep working across reschedules and edits,
  and lead to the replay after the end, so its ``exp`` is far: ``JOIN_LINK_LIFETIME`` after the end
  as scheduled when it was issued. What ends a link early is the registration record, checked on
  every use on every process (``Registrations.link_ended``: a cancel); a reschedule also mails a
  fresh link.
- The registrant's cancel page: their join link at ``/cancel/<id>`` (same token), in every mail that
  carries the join link and in the lobby.
- The webinar's host and co-hosts: the host console for that webinar, ``/host#webinar=<id>``.
- Anyone else: the webinar's public page, ``/webinars/<id>`` (details and registration).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from realtime.auth.tokens import TokenService
from storage.registrations import Registrations

# A reschedule moves the end, never the exp of links already mailed: a year covers any real move.
JOIN_LINK_LIFETIME = timedelta(days=365)
# Signing a link is CPU work (an HMAC over a JWT): a chunk of 1,000 signed in one go held the event
# loop for 50-100 ms on a loaded machine, long enough to show in a live room's latency.
SIGN_BETWEEN_YIELDS = 50


class JoinLinks:
    def __init__(self, tokens: TokenService, base_url: str) -> None:
        self.tokens = tokens
        self.base_url = base_url.rstrip("/")

    def join(self, webinar: dict[str, Any], reg: dict[str, Any]) -> str:
        """The registrant's personal link (``reg`` approved)."""
        starts = webinar["starts_at"]
        if starts.tzinfo is None:
            starts = starts.replace(tzinfo=UTC)
        ends = starts + timedelta(minutes=int(webinar.get("duration_minutes", 60))) + JOIN_LINK_LIFETIME
        ttl = max(3600, int((ends - datetime.now(UTC)).total_seconds()))
        token = self.tokens.issue(
            reg["user_id"], role="attendee", name=reg["name"], webinar=webinar["_id"], ttl=ttl, scope="access"
        )
        return f"{self.base_url}/join/{webinar['_id']}#token={token}"

    def cancel(self, join_url: str) -> str | None:
        """The cancel page of a personal join link (None for any other link)."""
        prefix = f"{self.base_url}/join/"
        return f"{self.base_url}/cancel/{join_url[len(prefix) :]}" if join_url.startswith(prefix) else None

    def console(self, webinar_id: str) -> str:
        return f"{self.base_url}/host#webinar={webinar_id}"

    def page(self, webinar_id: str) -> str:
        return f"{self.base_url}/webinars/{webinar_id}"

    async def for_users(
        self, registrations: Registrations, webinar: dict[str, Any], user_ids: Iterable[str]
    ) -> dict[str, str]:
        """Each user's link into ``webinar`` (staff: the console; approved: the join link; else the page)."""
        users = list(user_ids)
        wid = str(webinar["_id"])
        staff = {webinar.get("owner_id"), *webinar.get("cohost_ids", [])}
        links = {u: self.page(wid) for u in users}
        for n, reg in enumerate(await registrations.approved_of_users(wid, users)):
            if n % SIGN_BETWEEN_YIELDS == SIGN_BETWEEN_YIELDS - 1:
                await asyncio.sleep(0)
            links[reg["user_id"]] = self.join(webinar, {**reg, "name": reg.get("name", "")})
        for u in users:
            if u in staff:
                links[u] = self.console(wid)
        return links
