"""Caps on simultaneous live connections, so that one user or one client address cannot hold an
unbounded share of a process (docs/protocol.md, close code 4009 and HTTP 429 ``too_many_connections``).

- Per user (``MAX_CONNECTIONS_PER_USER``): authenticated WebSockets and SSE streams together.
- Per client address (``MAX_UNAUTHENTICATED_PER_ADDRESS``): WebSockets that have not authenticated
  yet; a socket leaves this count when its ``auth`` succeeds (and then counts for its user).

The counts are this process's own: with N processes behind a load balancer a user may hold up to N
times the cap. A cap of 0 turns that cap off. Every place taken is given back exactly once, when its
connection ends (the session keeps the one place it holds).
"""

from __future__ import annotations

from typing import Literal

from storage.errors import Kind, Refused

Scope = Literal["user", "address"]
Place = tuple[Scope, str]

TOO_MANY_CONNECTIONS = 4009


def too_many(scope: Scope) -> Refused:
    who = "this user" if scope == "user" else "this address before authenticating"
    return Refused(Kind.RATE_LIMITED, "too_many_connections", f"too many simultaneous connections for {who}")


class ConnectionLimits:
    def __init__(self, per_user: int, unauthenticated_per_address: int) -> None:
        self._caps: dict[Scope, int] = {"user": per_user, "address": unauthenticated_per_address}
        self._held: dict[Place, int] = {}

    def take(self, scope: Scope, key: str) -> Place:
        """A place for one more connection of ``key`` (a user id or a client address), or
        ``Refused`` (``too_many_connections``) when ``key`` holds the cap already."""
        place: Place = (scope, key)
        held = self._held.get(place, 0)
        cap = self._caps[scope]
        if cap and held >= cap:
            raise too_many(scope)
        self._held[place] = held + 1
        return place

    def move(self, held: Place | None, scope: Scope, key: str) -> Place:
        """:meth:`take` a place for ``key``, then give back ``held`` (an authenticating socket moves
        from its address's count to its user's); on ``Refused`` it keeps ``held``."""
        place = self.take(scope, key)
        if held is not None:
            self.give_back(held)
        return place

    def give_back(self, place: Place) -> None:
        held = self._held.get(place, 0) - 1
        if held > 0:
            self._held[place] = held
        else:
            self._held.pop(place, None)

    def held(self, scope: Scope, key: str) -> int:
        """How many places ``key`` holds now."""
        return self._held.get((scope, key), 0)
