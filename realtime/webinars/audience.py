"""Who a webinar's news should reach: its approved registrants, and which of them are in the room.

A query object for listeners of the webinar events (notifications): an announcement reaches the
registrants in the room as a live banner, and the others by notification.
"""

from __future__ import annotations

from realtime.engine.channels import room
from realtime.engine.presence import PresenceBackend
from storage.registrations import Registrations

ROSTER_PAGE = 1000


class RoomAudience:
    def __init__(self, registrations: Registrations, presence: PresenceBackend) -> None:
        self.registrations = registrations
        self.presence = presence

    async def absent_registrants(self, webinar_id: str) -> list[str]:
        """User ids of the approved registrants not in ``room:<id>`` now, by presence (which forgets a
        crashed process's users after ``PRESENCE_TTL``)."""
        present = await self.present(webinar_id)
        return [u for u in await self.registrations.approved_user_ids(webinar_id) if u not in present]

    async def present(self, webinar_id: str) -> set[str]:
        """User ids in ``room:<id>`` now, on every process."""
        present: set[str] = set()
        offset = 0
        while True:
            total, rows = await self.presence.roster(room(webinar_id), offset, ROSTER_PAGE)
            present.update(str(r["user"]) for r in rows)
            offset += len(rows)
            if not rows or offset >= total:
                return present
