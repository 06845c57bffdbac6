"""Caps on simultaneous live connections, so that one user or one client address cannot hold an
unbounded share of the server (docs/protocol.md, close code 4009 and HTTP 429 ``too_many_connections``).

- Per user (``MAX_CONNECTIONS_PER_USER``): authenticated WebSockets and SSE streams together, on
  every process when a shared count is given (Redis, realtime/engine/limits_redis.py), else on this
  process. A crashed process's connections stop counting after the shared count's TTL.
- Per client address (``MAX_UNAUTHENTICATED_PER_ADDRESS``): WebSockets that have not authenticated
  yet, on this process; a socket leaves this count when its ``auth`` succeeds (and then counts for
  its user).

A cap of 0 turns that cap off. Every place taken is given back exactly once, when its connection
ends (the session keeps the one place it holds). When the shared count fails (Redis down), a user is
held to the cap on this process only: a lost count must not lock users out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, Literal, Protocol

from storage.cancellation import raise_if_cancelling
from storage.errors import Kind, Refused

log = logging.getLogger("realtime.engine.limits")

Scope = Literal["user", "address"]
Place = tuple[Scope, str, str]  # (scope, user id or address, connection id)

TOO_MANY_CONNECTIONS = 4009


class SharedUserCount(Protocol):
    """Each user's live connections across processes, as members that expire after ``ttl``."""

    async def add(self, user: str, member: str, cap: int, ttl: float) -> bool:
        """Count ``member`` for ``user`` unless ``user`` holds ``cap`` live members already
        (atomically: two processes cannot both take the last place)."""

    async def remove(self, user: str, member: str) -> None: ...

    async def refresh(self, members: dict[str, list[str]], ttl: float) -> None:
        """Extend the expiry of these ``{user: [member, ...]}``."""


def too_many(scope: Scope) -> Refused:
    who = "this user" if scope == "user" else "this address before authenticating"
    return Refused(Kind.RATE_LIMITED, "too_many_connections", f"too many simultaneous connections for {who}")


class ConnectionLimits:
    def __init__(
        self,
        per_user: int,
        unauthenticated_per_address: int,
        shared: SharedUserCount | None = None,
        ttl: float = 30.0,
    ) -> None:
        self._caps: dict[Scope, int] = {"user": per_user, "address": unauthenticated_per_address}
        self._held: dict[tuple[Scope, str], int] = {}
        self._shared = shared
        self.ttl = ttl
        self._members: dict[str, set[str]] = {}  # user -> connection ids counted in the shared count
        self._tasks: set[asyncio.Task[Any]] = set()
        self._refresher: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._shared is not None and self._caps["user"]:
            self._refresher = asyncio.get_running_loop().create_task(self._refresh(), name="limits")

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        if self._shared is not None:
            for user, members in list(self._members.items()):
                for member in list(members):
                    with contextlib.suppress(Exception):
                        await self._shared.remove(user, member)
        self._members.clear()

    def take_address(self, address: str) -> Place:
        """A place for one more unauthenticated socket from ``address``, or ``Refused``."""
        self._take_local("address", address)
        return ("address", address, "")

    async def take_user(self, user: str, conn: str) -> Place:
        """A place for connection ``conn`` of ``user``, or ``Refused`` (``too_many_connections``)
        when ``user`` holds the cap already, here or (with a shared count) on all processes."""
        self._take_local("user", user)
        place: Place = ("user", user, conn)
        cap = self._caps["user"]
        if self._shared is None or not cap:
            return place
        try:
            counted = await self._shared.add(user, conn, cap, self.ttl)
        except Exception:  # noqa: BLE001 - the local cap still holds; see the module's docstring
            log.warning("shared connection count failed; counting on this process only", exc_info=True)
            return place
        if not counted:
            self._give_back_local("user", user)
            raise too_many("user")
        self._members.setdefault(user, set()).add(conn)
        return place

    def give_back(self, place: Place) -> None:
        scope, key, conn = place
        self._give_back_local(scope, key)
        members = self._members.get(key) if scope == "user" else None
        if members is not None and conn in members and self._shared is not None:
            members.discard(conn)
            if not members:
                del self._members[key]
            self._spawn(self._shared.remove(key, conn))

    def held(self, scope: Scope, key: str) -> int:
        """How many places ``key`` holds on this process now."""
        return self._held.get((scope, key), 0)

    def _take_local(self, scope: Scope, key: str) -> None:
        held = self._held.get((scope, key), 0)
        cap = self._caps[scope]
        if cap and held >= cap:
            raise too_many(scope)
        self._held[(scope, key)] = held + 1

    def _give_back_local(self, scope: Scope, key: str) -> None:
        held = self._held.get((scope, key), 0) - 1
        if held > 0:
            self._held[(scope, key)] = held
        else:
            self._held.pop((scope, key), None)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("shared connection count: removal failed (it expires)", exc_info=task.exception())

    async def _refresh(self) -> None:
        assert self._shared is not None
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self._shared.refresh({u: list(m) for u, m in self._members.items()}, self.ttl)
            except Exception:  # noqa: BLE001 - keep refreshing through Redis hiccups
                raise_if_cancelling()
                log.warning("shared connection count: refresh failed", exc_info=True)
