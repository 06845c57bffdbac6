"""Presence: who is in a room, across processes, with TTL-based clean-up.

The backend seam (``PresenceBackend``) stores entries keyed by (channel, node, user) with an expiry;
the tracker (``PresenceTracker``) keeps this process's reference counts (a user with three tabs is one
attendee: first join adds, last leave removes), refreshes its entries before they expire, and
publishes one coalesced ephemeral ``presence`` message per channel per interval when the count or
the roster changed, so a 5,000-person room is not flooded with join/leave events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict
from typing import Any, Protocol

from storage.cancellation import raise_if_cancelling

log = logging.getLogger("realtime.engine.presence")

MAX_NAMES_PER_UPDATE = 20
FULL_ROUND_EVERY = 5


class PresenceBackend(Protocol):
    async def add(self, channel: str, node: str, user: str, info: dict[str, Any], ttl: float) -> None: ...

    async def remove(self, channel: str, node: str, user: str) -> None: ...

    async def refresh(self, node: str, entries: dict[str, list[str]], ttl: float) -> None:
        """Extend the expiry of this node's ``{channel: [user, ...]}`` entries, also of one that
        expired meanwhile (this node lagged past the TTL): each of them is connected here. A user
        removed while a refresh runs may come back until the TTL passes."""

    async def count(self, channel: str) -> int: ...

    async def roster(self, channel: str, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """Total distinct users and one page of ``{"user", **info}`` sorted by name then user."""

    async def close(self) -> None: ...


class PresenceTracker:
    def __init__(self, backend: PresenceBackend, publish: Any, *, ttl: float, interval: float) -> None:
        self.backend = backend
        self.node = secrets.token_hex(6)
        self._publish = publish  # async (channel, type, data, durable=False)
        self.ttl = ttl
        self.interval = interval
        self._refs: dict[str, dict[str, int]] = defaultdict(dict)
        self._joined: dict[str, list[str]] = defaultdict(list)
        self._left: dict[str, list[str]] = defaultdict(list)
        self._dirty: set[str] = set()
        self._last_count: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._rounds = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="presence")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for channel, users in list(self._refs.items()):
            for user in list(users):
                with contextlib.suppress(Exception):
                    await self.backend.remove(channel, self.node, user)
        self._refs.clear()

    async def join(self, channel: str, user: str, info: dict[str, Any]) -> None:
        refs = self._refs[channel]
        refs[user] = refs.get(user, 0) + 1
        if refs[user] == 1:
            await self.backend.add(channel, self.node, user, info, self.ttl)
            self._joined[channel].append(info.get("name") or user)
            self._dirty.add(channel)

    async def leave(self, channel: str, user: str, info: dict[str, Any]) -> None:
        refs = self._refs.get(channel)
        if not refs or user not in refs:
            return
        refs[user] -= 1
        if refs[user] <= 0:
            del refs[user]
            if not refs:
                del self._refs[channel]
            await self.backend.remove(channel, self.node, user)
            self._left[channel].append(info.get("name") or user)
            self._dirty.add(channel)

    def local_channels(self) -> list[str]:
        return list(self._refs)

    async def _run(self) -> None:
        since_refresh = 0.0
        while True:
            await asyncio.sleep(self.interval)
            since_refresh += self.interval
            try:
                if since_refresh >= self.ttl / 3:
                    since_refresh = 0.0
                    await self.backend.refresh(
                        self.node, {c: list(u) for c, u in self._refs.items()}, self.ttl
                    )
                await self._announce()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep presence running through backend hiccups
                raise_if_cancelling()
                log.warning("presence round failed", exc_info=True)

    async def _announce(self) -> None:
        # Channels with local changes every round; every local channel every FULL_ROUND_EVERY
        # rounds, so that entries a crashed process left behind are seen to expire (a recount
        # reads the whole room, too dear to do every second for every room).
        self._rounds += 1
        channels = set(self._dirty)
        if self._rounds % FULL_ROUND_EVERY == 0:
            channels |= set(self._refs)
        self._dirty.clear()
        for channel in channels:
            count = await self.backend.count(channel)
            joined = self._joined.pop(channel, [])
            left = self._left.pop(channel, [])
            if count == self._last_count.get(channel) and not joined and not left:
                continue
            self._last_count[channel] = count
            if channel not in self._refs:
                self._last_count.pop(channel, None)
            await self._publish(
                channel,
                "presence",
                {
                    "count": count,
                    "joined": joined[:MAX_NAMES_PER_UPDATE],
                    "left": left[:MAX_NAMES_PER_UPDATE],
                    "joined_total": len(joined),
                    "left_total": len(left),
                },
                durable=False,
            )
