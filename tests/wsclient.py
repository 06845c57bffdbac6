"""A small WebSocket test client speaking the protocol of docs/protocol.md."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect


class Closed(Exception):
    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"closed {code} {reason}")
        self.code = code
        self.reason = reason


class WsClient:
    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn
        self.seen: list[dict[str, Any]] = []  # messages skipped by expect()

    @classmethod
    async def connect(
        cls, url: str, token: str | None = None, origin: str | None = None, **kwargs: Any
    ) -> WsClient:
        base = url.replace("http://", "ws://")
        headers = {
            "Origin": origin if origin is not None else base.replace("ws://", "http://").split("/ws")[0]
        }
        conn = await websocket_connect(HTTPRequest(base, headers=headers), **kwargs)
        client = cls(conn)
        if token is not None:
            await client.send({"type": "auth", "token": token})
            welcome = await client.expect("welcome")
            client.user = welcome["user"]
        return client

    async def send(self, obj: Any) -> None:
        await self.conn.write_message(json.dumps(obj))

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.read_message(), timeout)
        if raw is None:
            raise Closed(self.conn.close_code, self.conn.close_reason)
        return json.loads(raw)

    async def expect(self, type_: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        """The next message of ``type_`` (matching ``match``); other messages are kept in ``seen``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await self.recv(max(0.01, deadline - loop.time()))
            if msg.get("type") == type_ and all(msg.get(k) == v for k, v in match.items()):
                return msg
            self.seen.append(msg)

    async def subscribe(self, channel: str, since: int | None = None) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": "subscribe", "channel": channel}
        if since is not None:
            msg["since"] = since
        await self.send(msg)
        return await self.expect("subscribed", channel=channel)

    async def messages(
        self, channel: str, n: int, type_: str | None = None, timeout: float = 10
    ) -> list[dict[str, Any]]:
        """The next ``n`` durable messages on ``channel`` (optionally of one type)."""
        out: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(out) < n:
            msg = await self.recv(max(0.01, deadline - loop.time()))
            if msg.get("channel") == channel and "seq" in msg and (type_ is None or msg["type"] == type_):
                out.append(msg)
            else:
                self.seen.append(msg)
        return out

    async def rpc(self, method: str, params: dict[str, Any], rid: int = 1) -> dict[str, Any]:
        await self.send({"type": "rpc", "id": rid, "method": method, "params": params})
        while True:
            msg = await self.recv()
            if msg.get("type") in ("rpc_result", "rpc_error") and msg.get("id") == rid:
                return msg
            self.seen.append(msg)

    async def closed(self, timeout: float = 15) -> Closed:
        """Read until the server closes the connection; return the close code and reason."""
        try:
            while True:
                self.seen.append(await self.recv(timeout))
        except Closed as closed:
            self.conn.close()
            return closed

    def close(self) -> None:
        self.conn.close()
