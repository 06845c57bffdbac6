"""Channel names and the policy seam that decides who may use them.

Channels:
- ``room:<webinar_id>``      everyone admitted to the webinar (hosts, panelists, attendees);
- ``backstage:<webinar_id>`` hosts and panelists of that webinar only;
- ``user:<user_id>``         one user's personal channel (every tab and device of theirs).

A ``ChannelPolicy`` is consulted on every subscribe and client publish; the webinar domain provides
the real one (storage lookups of roles, registrations and bans). Returning an error code refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from realtime.auth.tokens import Claims

KINDS = ("room", "backstage", "user")
_NAME = re.compile(r"^(room|backstage|user):([A-Za-z0-9_.:@-]{1,128})$")


@dataclass(frozen=True)
class Channel:
    kind: str
    id: str

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.id}"


def parse_channel(name: Any) -> Channel | None:
    """The channel named ``name``, or None when the name is not valid."""
    if not isinstance(name, str) or len(name) > 140:
        return None
    match = _NAME.match(name)
    if match is None:
        return None
    return Channel(match.group(1), match.group(2))


def room(webinar_id: str) -> str:
    return f"room:{webinar_id}"


def backstage(webinar_id: str) -> str:
    return f"backstage:{webinar_id}"


def personal(user_id: str) -> str:
    return f"user:{user_id}"


class ChannelPolicy(Protocol):
    async def can_subscribe(self, claims: Claims, channel: Channel) -> str | None:
        """None to admit; else an error code (``forbidden``, ``banned``, ``not_found``...)."""

    async def can_publish(self, claims: Claims, channel: Channel, type: str) -> str | None:
        """Client publish of an ephemeral ``type`` (e.g. ``typing``); None admits."""

    async def joined(self, claims: Claims, channel: Channel) -> dict[str, Any] | None:
        """First subscription of this user's connection to ``channel``; may return a state snapshot
        (open poll, pinned question, counts...) sent to the client with ``subscribed``. A snapshot
        with an int ``seq`` reflects the channel up to that seq: a subscribe without ``since``
        continues from there (``subscribed.seq`` is that seq, later messages follow)."""

    async def left(self, claims: Claims, channel: Channel) -> None:
        """The connection left ``channel`` (unsubscribe, close, kick)."""


class ClaimsPolicy:
    """Decides from the token alone, before the webinar domain is wired: a user may use their own
    channel, an attendee token scoped to a webinar (``wid``) its room, a host any room and backstage."""

    async def can_subscribe(self, claims: Claims, channel: Channel) -> str | None:
        if channel.kind == "user":
            return None if channel.id == claims.user_id else "forbidden"
        if claims.is_host:
            return None
        if channel.kind == "room" and claims.webinar == channel.id:
            return None
        return "forbidden"

    async def can_publish(self, claims: Claims, channel: Channel, type: str) -> str | None:
        if type == "typing" and channel.kind == "room":
            return await self.can_subscribe(claims, channel)
        return "forbidden"

    async def joined(self, claims: Claims, channel: Channel) -> dict[str, Any] | None:
        return None

    async def left(self, claims: Claims, channel: Channel) -> None:
        return None
