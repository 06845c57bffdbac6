"""A small client of the live protocol for the webinar tests: auth, subscribe, rpc, await messages."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

TIMEOUT = 10.0


class LiveClient:
    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn
        self.inbox: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.close_code: int | None = None
        self.ids = itertools.count(1)
        self.reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(cls, base_url: str, token: str) -> LiveClient:
        http = base_url.replace("ws://", "http://")
        ws = base_url.replace("http://", "ws://") + "/ws"
        conn = await websocket_connect(HTTPRequest(ws, headers={"Origin": http}))
        client = cls(conn)
        await client.send({"type": "auth", "token": token})
        await client.expect(lambda m: m["type"] == "welcome")
        return client

    async def _read(self) -> None:
        while True:
            raw = await self.conn.read_message()
            if raw is None:
                self.close_code = self.conn.close_code or 0
                self.changed.set()
                return
            self.inbox.append(json.loads(raw))
            self.changed.set()

    async def send(self, msg: dict[str, Any]) -> None:
        await self.conn.write_message(json.dumps(msg))

    async def expect(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        """The first unread message matching ``match`` (removed from the inbox); waits for it."""

        async def wait() -> dict[str, Any]:
            while True:
                for i, msg in enumerate(self.inbox):
                    if match(msg):
                        return self.inbox.pop(i)
                if self.close_code is not None:
                    raise ConnectionError(f"closed with {self.close_code} while waiting")
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(wait(), timeout)

    async def event(self, type: str, channel: str | None = None) -> dict[str, Any]:
        return await self.expect(
            lambda m: m["type"] == type and (channel is None or m.get("channel") == channel)
        )

    async def subscribe(self, channel: str, **extra: Any) -> dict[str, Any]:
        await self.send({"type": "subscribe", "channel": channel, **extra})
        return await self.expect(
            lambda m: m.get("channel") == channel and m["type"] in ("subscribed", "error")
        )

    async def rpc(self, method: str, **params: Any) -> dict[str, Any]:
        """``{"result": ...}`` or ``{"error": {"code", "message"}}``."""
        rid = next(self.ids)
        await self.send({"type": "rpc", "id": rid, "method": method, "params": params})
        reply = await self.expect(lambda m: m["type"] in ("rpc_result", "rpc_error") and m.get("id") == rid)
        return {"result": reply["result"]} if reply["type"] == "rpc_result" else {"error": reply["error"]}

    async def closed(self) -> int:
        await asyncio.wait_for(self.reader, TIMEOUT)
        return self.close_code or 0

    async def close(self) -> None:
        self.conn.close()
        try:
            await asyncio.wait_for(self.reader, TIMEOUT)
        except (TimeoutError, Exception):  # noqa: BLE001 - closing in a test teardown
            self.reader.cancel()


async def close_all(services: Any, *clients: LiveClient) -> None:
    """Close ``clients`` and wait until the server has finished leaving their channels (the leave
    writes attendance), so no server task outlives the test's loop."""
    for client in clients:
        await client.close()

    async def settled() -> None:
        # The server offers no event for "this connection finished leaving"; poll that state.
        while services.hub.connections or any(  # noqa: ASYNC110
            t.get_coro().__qualname__ == "RealtimeSocket._cleanup" for t in asyncio.all_tasks()
        ):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(settled(), TIMEOUT)
