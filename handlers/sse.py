"""The SSE endpoint ``/sse``: the same channels one-way, for clients where WebSockets are blocked.

Authenticate with a ticket from ``POST /api/realtime/tickets`` (single use, 60 s); resume with
``Last-Event-ID`` (header, or ``last_event_id`` query parameter since a new EventSource cannot set
headers). Event ids are ``channel@seq,channel@seq`` — the position in every channel of the stream.

A stream is a live session (realtime/engine/session.py) like a WebSocket: it counts in presence and
attendance, and a kick, a logout or the token's expiry ends it. This handler frames: it checks the
query before the stream starts (errors are JSON with an HTTP status), then renders the session's
messages as events through the connection's bounded outbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

from tornado.http1connection import HTTP1Connection

from config import Settings
from handlers.base import JsonHandler
from handlers.bearer import bearer_claims
from handlers.limits import MINUTE, enforce
from realtime.auth.tokens import Claims, TokenService
from realtime.engine.channels import Channel, parse_channel
from realtime.engine.outbox import Outbox
from realtime.engine.publication import Publication, encode
from realtime.engine.session import SLOW_CONSUMER, Session, SessionDeps
from storage.errors import Kind, Refused
from storage.rate_limits import RateLimits
from storage.tickets import Tickets

log = logging.getLogger("realtime.sse")

MAX_SSE_CHANNELS = 16


def parse_event_id(value: str) -> dict[str, int]:
    positions: dict[str, int] = {}
    for part in value.split(",")[:MAX_SSE_CHANNELS]:
        name, sep, seq = part.strip().rpartition("@")
        if sep and seq.isdigit() and parse_channel(name) is not None:
            positions[name] = int(seq)
    return positions


def _chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk (RFC 9112 section 7.1)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def _as_is(data: bytes) -> bytes:
    return data


class EventStreamHandler(JsonHandler):
    transport_name = "sse"

    def initialize(self, settings: Settings, live: SessionDeps, tickets: Tickets) -> None:
        self.settings_ = settings
        self.live = live
        self.tickets = tickets
        self.session: Session | None = None
        self.outbox: Outbox | None = None
        self.positions: dict[str, int] = {}
        self._frame = _as_is
        self._done = asyncio.Event()

    @property
    def remote_ip(self) -> str:
        return self.request.remote_ip or ""

    async def get(self) -> None:
        ticket = self.get_query_argument("ticket", "")
        names = list(dict.fromkeys(self.get_query_arguments("channel")))
        if not names or len(names) > MAX_SSE_CHANNELS:
            raise Refused(Kind.INVALID, "bad_channel", f"give 1 to {MAX_SSE_CHANNELS} 'channel' parameters")
        if any(parse_channel(n) is None for n in names):
            raise Refused(Kind.INVALID, "bad_channel", "unknown or malformed channel name")
        raw = await self.tickets.redeem(ticket)  # 401 ticket_invalid: unknown, used or expired
        claims = await self.live.tokens.unrevoked(Claims(**raw))
        if claims.exp < time.time():
            raise Refused(Kind.UNAUTHORIZED, "token_expired", "the token behind this ticket has expired")
        last_id = self.request.headers.get("Last-Event-ID") or self.get_query_argument("last_event_id", "")
        since = parse_event_id(last_id) if last_id else {}
        session = self.session = Session(self.live, self, claims)
        admitted: list[Channel] = [await session.admit(name, since.get(name)) for name in names]
        await session.reserve()  # 429 too_many_connections past the user's cap
        try:
            await self._start()
            session.open(self.push)
            for channel in admitted:
                await session.join(channel, since.get(channel.name))
            log.info("sse open conn=%s user=%s channels=%d", session.conn_id, claims.user_id, len(admitted))
            await self._done.wait()
        except Refused as exc:  # the stream has started: say why it ends
            session.error(exc.code, exc.message, **exc.extra)
        finally:
            if self.outbox is not None:
                self.outbox.finish()  # what is queued goes before the response's last chunk
            session.closed()
            dropped = self.outbox.dropped if self.outbox is not None else 0
            log.info("sse close conn=%s dropped=%d", session.conn_id, dropped)

    async def _start(self) -> None:
        """Send the response head and hand the connection to the outbox."""
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Accel-Buffering", "no")
        self.write(b"retry: 2000\n\n")
        await self.flush()
        # From here the outbox writes to the connection itself. Tornado sends this response with
        # chunked transfer encoding to an HTTP/1.1 client (no Content-Length), so every write is
        # framed as a chunk; HTTP/1.0 gets the bytes as they are and the end of the connection.
        if self.request.version == "HTTP/1.1":
            self._frame = _chunk
        connection = self.request.connection
        assert isinstance(connection, HTTP1Connection)
        self.outbox = Outbox(
            connection.stream, self.settings_.ws_outbox_bytes, self._on_overflow, self._done.set
        )

    def on_connection_close(self) -> None:
        self._done.set()

    # -- framing ---------------------------------------------------------------------------------

    def _write(self, event: bytes, droppable: bool) -> None:
        if self.outbox is not None and not self._done.is_set():
            self.outbox.send(self._frame(event), droppable)

    def push(self, frame: bytes, droppable: bool, pubs: list[Publication]) -> None:
        # ``frame`` is the WebSocket framing; an event's id is this stream's own position.
        for pub in pubs:
            self.deliver(pub)

    def deliver(self, pub: Publication) -> None:
        if pub.seq is None:
            self._write(b"data: " + pub.json + b"\n\n", True)
            return
        self.positions[pub.channel] = pub.seq
        head = "id: " + ",".join(f"{c}@{s}" for c, s in self.positions.items()) + "\n"
        self._write(head.encode() + b"data: " + pub.json + b"\n\n", False)

    def send_json(self, msg: dict[str, Any]) -> None:
        """A session message as an event named by its ``type``; ``subscribed`` is ``reset`` when
        history could not fill the gap."""
        kind = msg["type"]
        body = {k: v for k, v in msg.items() if k not in ("type", "reset")}
        if kind == "subscribed":
            self.positions[msg["channel"]] = msg["seq"]
            kind = "reset" if msg.get("reset") else "subscribed"
        self._write(b"event: " + kind.encode() + b"\ndata: " + encode(body) + b"\n\n", False)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        """End the stream; while it can still carry one, a last ``kicked`` event gives the code
        (4003 banned or logged out, 4010 token expired, 1001 the server is going away)."""
        if code is not None:
            why = encode({"code": code, "reason": reason or ""})
            self._write(b"event: kicked\ndata: " + why + b"\n\n", False)
        self._done.set()

    def abort(self) -> None:
        self._done.set()  # the response ends now: an event stream has no close handshake to wait for

    def send_ping(self) -> None:
        self._write(b": keepalive\n\n", True)

    def answered_since_ping(self) -> bool:
        return True  # an EventSource cannot answer; a dead peer shows when a write fails

    def _on_overflow(self) -> None:
        assert self.session is not None
        log.info("sse conn=%s closed: slow consumer (outbox full)", self.session.conn_id)
        self.session.close(SLOW_CONSUMER, "slow consumer: outgoing buffer full; reconnect and resume")


class TicketHandler(JsonHandler):
    """``POST /api/realtime/tickets``: trade the bearer JWT for a single-use SSE ticket."""

    def initialize(self, tokens: TokenService, tickets: Tickets, limits: RateLimits, rate: int) -> None:
        self.tokens = tokens
        self.tickets = tickets
        self.limits = limits
        self.rate = rate  # TICKET_RATE

    async def post(self) -> None:
        claims = await bearer_claims(self, self.tokens)
        await enforce(self.limits, f"ticket:{claims.user_id}", self.rate, MINUTE, "SSE tickets")
        ticket = await self.tickets.issue(dataclasses.asdict(claims))
        self.send({"ticket": ticket, "expires_in": 60}, 201)
