"""The SSE endpoint ``/sse``: the same channels one-way, for clients where WebSockets are blocked.

Authenticate with a ticket from ``POST /api/realtime/tickets`` (single use, 60 s); resume with
``Last-Event-ID`` (header, or ``last_event_id`` query parameter since a new EventSource cannot set
headers). Event ids are ``channel@seq,channel@seq`` — the position in every channel of the stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from typing import Any

import tornado.iostream

from config import Settings
from handlers.base import JsonHandler
from handlers.bearer import bearer_claims
from realtime.auth.tokens import Claims
from realtime.engine.channels import ChannelPolicy, parse_channel
from realtime.engine.hub import Hub
from realtime.engine.publication import Publication
from storage.errors import Kind, Refused
from storage.tickets import Tickets

log = logging.getLogger("realtime.sse")

MAX_SSE_CHANNELS = 16
KEEPALIVE = 15.0


def parse_event_id(value: str) -> dict[str, int]:
    positions: dict[str, int] = {}
    for part in value.split(",")[:MAX_SSE_CHANNELS]:
        name, sep, seq = part.strip().rpartition("@")
        if sep and seq.isdigit() and parse_channel(name) is not None:
            positions[name] = int(seq)
    return positions


class EventStreamHandler(JsonHandler):
    def initialize(self, settings: Settings, hub: Hub, policy: ChannelPolicy, tickets: Tickets) -> None:
        self.settings_ = settings
        self.hub = hub
        self.policy = policy
        self.tickets = tickets
        self.conn_id = secrets.token_hex(6)
        self.user_id = ""
        self.positions: dict[str, int] = {}
        self.channels: list[str] = []
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._flushing = False
        self._done = asyncio.Event()
        self.dropped = 0

    async def get(self) -> None:
        ticket = self.get_query_argument("ticket", "")
        names = self.get_query_arguments("channel")
        if not names or len(names) > MAX_SSE_CHANNELS:
            raise Refused(Kind.INVALID, "bad_channel", f"give 1 to {MAX_SSE_CHANNELS} 'channel' parameters")
        channels = [parse_channel(n) for n in names]
        if any(c is None for c in channels):
            raise Refused(Kind.INVALID, "bad_channel", "unknown or malformed channel name")
        raw = await self.tickets.redeem(ticket)
        if raw is None:
            raise Refused(
                Kind.UNAUTHORIZED, "ticket_invalid", "unknown, used or expired ticket; get a new one"
            )
        claims = Claims(**raw)
        if claims.exp < time.time():
            raise Refused(Kind.UNAUTHORIZED, "token_expired", "the token behind this ticket has expired")
        for channel in channels:
            assert channel is not None
            refusal = await self.policy.can_subscribe(claims, channel)
            if refusal is not None:
                raise Refused(Kind.FORBIDDEN, refusal, f"you may not subscribe to {channel.name}")
        self.user_id = claims.user_id
        last_id = self.request.headers.get("Last-Event-ID") or self.get_query_argument("last_event_id", "")
        since = parse_event_id(last_id) if last_id else {}

        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Accel-Buffering", "no")
        self.write(b"retry: 2000\n\n")
        await self.flush()
        self.hub.connections.add(self)
        loop = asyncio.get_running_loop()
        keepalive = loop.call_later(KEEPALIVE, self._keepalive)
        try:
            for channel in channels:
                assert channel is not None
                name = channel.name

                def ready(position: int, reset: bool, name: str = name) -> None:
                    self.positions[name] = position
                    kind = "reset" if reset else "subscribed"
                    self._send(
                        f'event: {kind}\ndata: {{"channel":"{name}","seq":{position}}}\n\n'.encode(), False
                    )

                await self.hub.subscribe(self, name, since.get(name), ready)
                self.channels.append(name)
            log.info("sse open conn=%s user=%s channels=%d", self.conn_id, self.user_id, len(self.channels))
            await self._done.wait()
        finally:
            keepalive.cancel()
            self.hub.connections.discard(self)
            for name in self.channels:
                await self.hub.unsubscribe(self, name)
            log.info("sse close conn=%s dropped=%d", self.conn_id, self.dropped)

    def on_connection_close(self) -> None:
        self._done.set()

    def _keepalive(self) -> None:
        if not self._done.is_set():
            self._send(b": keepalive\n\n", True)
            asyncio.get_running_loop().call_later(KEEPALIVE, self._keepalive)

    def push(self, frame: bytes, droppable: bool, pubs: list[Publication]) -> None:
        for pub in pubs:
            self.deliver(pub)

    def deliver(self, pub: Publication) -> None:
        if pub.seq is None:
            self._send(b"data: " + pub.json + b"\n\n", True)
            return
        self.positions[pub.channel] = pub.seq
        head = "id: " + ",".join(f"{c}@{s}" for c, s in self.positions.items()) + "\n"
        self._send(head.encode() + b"data: " + pub.json + b"\n\n", False)

    def kick(self, channel: str, code: int, reason: str) -> None:
        if channel == "*" or channel in self.channels:
            self._send(f'event: kicked\ndata: {{"code":{code}}}\n\n'.encode(), False)
            self.close()

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self._done.set()

    def _send(self, data: bytes, droppable: bool) -> None:
        if self._done.is_set():
            return
        if self._buffered + len(data) > self.settings_.ws_outbox_bytes:
            if droppable:
                self.dropped += 1
                return
            log.info("sse conn=%s closed: slow consumer", self.conn_id)
            self._done.set()
            return
        self._buffer.append(data)
        self._buffered += len(data)
        if not self._flushing:
            asyncio.get_running_loop().create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        self._flushing = True
        try:
            while self._buffer and not self._done.is_set():
                data = b"".join(self._buffer)
                self._buffer.clear()
                self.write(data)
                try:
                    await self.flush()
                except tornado.iostream.StreamClosedError:
                    self._done.set()
                finally:
                    self._buffered = max(0, self._buffered - len(data))
        finally:
            self._flushing = False


class TicketHandler(JsonHandler):
    """``POST /api/realtime/tickets``: trade the bearer JWT for a single-use SSE ticket."""

    def initialize(self, tokens: Any, tickets: Tickets) -> None:
        self.tokens = tokens
        self.tickets = tickets

    async def post(self) -> None:
        claims = await bearer_claims(self, self.tokens)
        ticket = await self.tickets.issue(dataclasses.asdict(claims))
        self.send({"ticket": ticket, "expires_in": 60}, 201)
