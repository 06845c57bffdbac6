"""A small WebSocket client of the real-time protocol for tests (auth, subscribe, await messages)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tornado.websocket import WebSocketClientConnection, websocket_connect


class Tab:
    """One browser tab: a connection to ``/ws`` authenticated as one user."""

    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn
        self.seen: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, ws_base: str, token: str) -> Tab:
        conn = await websocket_connect(ws_base + "/ws")
        tab = cls(conn)
        await tab.send({"type": "auth", "token": token})
        await tab.next("welcome")
        return tab

    async def send(self, msg: dict[str, Any]) -> None:
        await self.conn.write_message(json.dumps(msg))

    async def subscribe(self, channel: str, since: int | None = None) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": "subscribe", "channel": channel}
        if since is not None:
            msg["since"] = since
        await self.send(msg)
        return await self.next("subscribed")

    async def next(self, type: str, timeout: float = 10) -> dict[str, Any]:
        """The next message of ``type`` (others are kept in ``seen``)."""

        async def wait() -> dict[str, Any]:
            while True:
                raw = await self.conn.read_message()
                if raw is None:
                    raise ConnectionError("connection closed")
                msg = json.loads(raw)
                self.seen.append(msg)
                if msg.get("type") == type:
                    return msg

        return await asyncio.wait_for(wait(), timeout)

    async def quiet(self, type: str, timeout: float = 0.3) -> bool:
        """True when no message of ``type`` arrives within ``timeout`` (checks for duplicates)."""
        try:
            await self.next(type, timeout)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self.conn.close()
