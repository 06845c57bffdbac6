"""Presence in one process (no Redis)."""

from __future__ import annotations

import time
from typing import Any


class MemoryPresence:
    def __init__(self) -> None:
        # channel -> user -> node -> expiry; channel -> user -> info
        self._entries: dict[str, dict[str, dict[str, float]]] = {}
        self._info: dict[str, dict[str, dict[str, Any]]] = {}

    async def add(self, channel: str, node: str, user: str, info: dict[str, Any], ttl: float) -> None:
        self._entries.setdefault(channel, {}).setdefault(user, {})[node] = time.monotonic() + ttl
        self._info.setdefault(channel, {})[user] = info

    async def remove(self, channel: str, node: str, user: str) -> None:
        nodes = self._entries.get(channel, {}).get(user)
        if nodes is not None:
            nodes.pop(node, None)
            if not nodes:
                del self._entries[channel][user]
                self._info.get(channel, {}).pop(user, None)

    async def refresh(self, node: str, entries: dict[str, list[str]], ttl: float) -> None:
        expiry = time.monotonic() + ttl
        for channel, users in entries.items():
            for user in users:
                nodes = self._entries.get(channel, {}).get(user)
                if nodes is not None:
                    nodes[node] = expiry

    def _live(self, channel: str) -> list[str]:
        now = time.monotonic()
        users = self._entries.get(channel, {})
        return [u for u, nodes in users.items() if any(exp > now for exp in nodes.values())]

    async def count(self, channel: str) -> int:
        return len(self._live(channel))

    async def roster(self, channel: str, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        info = self._info.get(channel, {})
        rows = [{"user": u, **info.get(u, {})} for u in self._live(channel)]
        rows.sort(key=lambda r: (str(r.get("name", "")).lower(), r["user"]))
        return len(rows), rows[offset : offset + limit]

    async def close(self) -> None:
        self._entries.clear()
