"""In-process broker: one server process, no Redis. Hands publications back through the same
callback the Redis broker uses, on the next loop iteration."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from realtime.engine.broker import MessageCallback, RecoverCallback


class MemoryBroker:
    def __init__(self) -> None:
        self._channels: set[str] = set()
        self._on_message: MessageCallback | None = None

    async def start(self, on_message: MessageCallback, on_recover: RecoverCallback) -> None:
        self._on_message = on_message

    async def publish(self, channel: str, payload: bytes) -> None:
        if self._on_message is not None and channel in self._channels:
            asyncio.get_running_loop().call_soon(self._on_message, channel, payload)

    async def publish_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        for channel, payload in items:
            await self.publish(channel, payload)

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def ready(self) -> bool:
        return True

    async def close(self) -> None:
        self._channels.clear()
        self._on_message = None
