"""The test suite's WebSocket client of the live protocol (docs/protocol.md): auth, subscribe, rpc,
and waiting for messages by type or by any rule.

Messages are read on demand. What a wait skips stays in ``inbox`` for a later wait, so the order in
which a test waits for messages does not have to be the order in which they arrive.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

TIMEOUT = 30.0  # a hang guard: a busy machine (both cores loaded) once took over 10 s

Match = str | Callable[[dict[str, Any]], bool]


class Closed(ConnectionError):
    """The server closed the connection (``code``, ``reason``) while a message was awaited."""

    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"closed {code} {reason}")
        self.code = code
        self.reason = reason


def ws_url(url: str) -> str:
    """The ``ws://.../ws`` endpoint of a server given by its base URL (``http://`` or ``ws://``)."""
    url = url.replace("http://", "ws://", 1)
    return url if url.endswith("/ws") else url.rstrip("/") + "/ws"


class WsClient:
    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn
        self.inbox: list[dict[str, Any]] = []  # read, not yet taken by a wait
        self.ids = itertools.count(1)

    @classmethod
    async def connect(
        cls, url: str, token: str | None = None, origin: str | None = None, **kwargs: Any
    ) -> WsClient:
        """Connect to the server at ``url`` (its base URL, or the ``/ws`` URL) with the page's
        Origin (or ``origin``) and, given a ``token``, authenticate."""
        endpoint = ws_url(url)
        page = endpoint.replace("ws://", "http://", 1).removesuffix("/ws")
        request = HTTPRequest(endpoint, headers={"Origin": origin if origin is not None else page})
        client = cls(await websocket_connect(request, **kwargs))
        if token is not None:
            await client.send({"type": "auth", "token": token})
            await client.expect("welcome")
        return client

    async def send(self, obj: Any) -> None:
        await self.conn.write_message(json.dumps(obj))

    async def _read(self, timeout: float) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.read_message(), max(0.01, timeout))
        if raw is None:
            raise Closed(self.conn.close_code, self.conn.close_reason)
        return json.loads(raw)

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The oldest message not yet taken."""
        if self.inbox:
            return self.inbox.pop(0)
        return await self._read(timeout)

    async def expect(self, match: Match, timeout: float = TIMEOUT, **fields: Any) -> dict[str, Any]:
        """The oldest message of type ``match`` (or for which ``match(msg)`` is true) whose
        ``fields`` equal the given ones; waits up to ``timeout`` seconds for it."""

        def wanted(msg: dict[str, Any]) -> bool:
            if isinstance(match, str) and msg.get("type") != match:
                return False
            if callable(match) and not match(msg):
                return False
            return all(msg.get(k) == v for k, v in fields.items())

        for i, msg in enumerate(self.inbox):
            if wanted(msg):
                return self.inbox.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self._read(deadline - loop.time())
            if wanted(msg):
                return msg
            self.inbox.append(msg)

    async def subscribe(self, channel: str, since: int | None = None) -> dict[str, Any]:
        """The server's answer for ``channel``: ``subscribed``, or the ``error`` refusing it."""
        msg: dict[str, Any] = {"type": "subscribe", "channel": channel}
        if since is not None:
            msg["since"] = since
        await self.send(msg)
        return await self.expect(
            lambda m: m.get("channel") == channel and m["type"] in ("subscribed", "error")
        )

    async def messages(
        self, channel: str, n: int, type_: str | None = None, timeout: float = TIMEOUT
    ) -> list[dict[str, Any]]:
        """The next ``n`` durable messages on ``channel`` (optionally of one type)."""

        def durable(m: dict[str, Any]) -> bool:
            return m.get("channel") == channel and "seq" in m and (type_ is None or m["type"] == type_)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        return [await self.expect(durable, deadline - loop.time()) for _ in range(n)]

    async def rpc(self, method: str, **params: Any) -> dict[str, Any]:
        """``{"result": ...}`` or ``{"error": {"code", "message"}}``."""
        rid = next(self.ids)
        await self.send({"type": "rpc", "id": rid, "method": method, "params": params})
        reply = await self.expect(lambda m: m["type"] in ("rpc_result", "rpc_error") and m.get("id") == rid)
        return {"result": reply["result"]} if reply["type"] == "rpc_result" else {"error": reply["error"]}

    async def closed(self, timeout: float = 15) -> Closed:
        """Read until the server closes the connection; its close code and reason."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                self.inbox.append(await self._read(deadline - loop.time()))
        except Closed as closed:
            self.conn.close()
            return closed

    def close(self) -> None:
        self.conn.close()


async def settled(services: Any) -> None:
    """Wait until every closed live session (WebSocket or SSE) has left its channels (the leave
    writes attendance), so no server task outlives the test's loop."""

    async def poll() -> None:
        # The server offers no event for "this connection finished leaving"; poll that state.
        while services.hub.connections or any(  # noqa: ASYNC110
            t.get_coro().__qualname__ == "Session._cleanup" for t in asyncio.all_tasks()
        ):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), TIMEOUT)


async def close_all(services: Any, *clients: WsClient) -> None:
    """Close ``clients`` and wait until the server has :func:`settled`."""
    for client in clients:
        client.close()
    await settled(services)
