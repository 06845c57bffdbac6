"""The WebSocket endpoint ``/ws``: one connection multiplexes many channels (docs/protocol.md).

This handler frames: it parses text frames into messages for its live session
(realtime/engine/session.py), renders the session's messages and publications as WebSocket frames
through the connection's bounded outbox, and owns the WebSocket's own close codes.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import tornado.httputil
import tornado.util
import tornado.websocket

from config import Settings
from handlers.base import JsonHandler, request_id_of
from handlers.json_input import BadJson, decode
from handlers.origin import normalise, origin_allowed
from handlers.ws_memory import Protocol, forget_handshake
from realtime.engine.outbox import Outbox
from realtime.engine.publication import Publication, encode, ws_text_frame
from realtime.engine.session import GOING_AWAY, NOT_AUTHENTICATED, SLOW_CONSUMER, Session, SessionDeps

log = logging.getLogger("realtime.ws")

__all__ = ["GOING_AWAY", "RealtimeSocket"]

# The WebSocket's own close codes (docs/protocol.md); the session's are in realtime/engine/session.py.
UNSUPPORTED_DATA = 1003
BAD_MESSAGES = 4000
FLOODING = 4029

_NO_HEADERS = tornado.httputil.HTTPHeaders()
_NO_UI = tornado.util.ObjectDict()

RATE_PER_SECOND = 20.0
RATE_BURST = 60.0
FLOOD_LIMIT = 200
MALFORMED_LIMIT = 10  # malformed frames in a row (no well-formed message between) before 4000


class _State:
    """A socket's own state, in one slotted object: Tornado's handler already has 28 attributes,
    and from its 30th an instance's attributes no longer share their keys with the other
    instances' (CPython 3.11): its ``__dict__`` grows from 296 bytes to 1,584."""

    __slots__ = (
        "settings",
        "session",
        "outbox",
        "remote_ip",
        "tokens_left",
        "last_refill",
        "refused",
        "malformed",
        "answered",
    )

    def __init__(self, settings: Settings, session: Session, remote_ip: str) -> None:
        self.settings = settings
        self.session = session
        self.outbox: Outbox | None = None
        self.remote_ip = remote_ip
        self.tokens_left = RATE_BURST
        self.last_refill = time.monotonic()
        self.refused = 0
        self.malformed = 0
        self.answered = True


class RealtimeSocket(tornado.websocket.WebSocketHandler):
    transport_name = "ws"

    def initialize(self, settings: Settings, live: SessionDeps) -> None:
        # Per-connection memory matters at 5,000 connections a process: the shared dependencies
        # live in one object for the whole process, the session's state in a slotted Session, and
        # this socket's in one slotted _State (see there why one attribute).
        self.state = _State(settings, Session(live, self), self.request.remote_ip or "")

    @property
    def session(self) -> Session:
        return self.state.session

    @property
    def outbox(self) -> Outbox | None:
        return self.state.outbox

    @property
    def settings_(self) -> Settings:
        return self.state.settings

    @property
    def remote_ip(self) -> str:
        return self.state.remote_ip

    def prepare(self) -> None:
        # The handshake's refusals in the JSON error shape (Tornado answers them in plain text), and
        # before Tornado's own same-host comparison, which raises on an Origin that is not a URL.
        if self.request.method != "GET":
            return  # 405, with Allow
        if self.request.headers.get("Upgrade", "").lower() != "websocket":
            self.set_header("Upgrade", "websocket")
            self._refuse(426, "upgrade_required", "open a WebSocket here (Upgrade: websocket)")
            return
        origin = self.request.headers.get("Origin")
        if origin is not None and (not normalise(origin) or not self.check_origin(origin)):
            self._refuse(403, "forbidden", "this Origin may not open a WebSocket here")

    def _refuse(self, status: int, code: str, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": {"code": code, "message": message}}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        JsonHandler.write_error(self, status_code, **kwargs)  # type: ignore[arg-type]  # the JSON shape, Allow

    def check_origin(self, origin: str) -> bool:
        ok = origin_allowed(
            origin, self.request.host, self.settings_.base_url, self.settings_.allowed_origins
        )
        if not ok:
            log.warning("websocket origin refused: %s", origin[:200])
        return ok

    def get_compression_options(self) -> None:
        return None  # broadcasts are framed once and shared; per-connection deflate would undo that

    def get_websocket_protocol(self) -> tornado.websocket.WebSocketProtocol | None:
        protocol = super().get_websocket_protocol()
        if isinstance(protocol, tornado.websocket.WebSocketProtocol13):
            protocol.__class__ = Protocol  # Tornado's, reading frames in a task of its own
        return protocol

    def open(self) -> None:
        assert self.ws_connection is not None
        stream = self.ws_connection.stream
        assert stream is not None
        state = self.state
        state.outbox = Outbox(stream, state.settings.ws_outbox_bytes, self._on_overflow, self._on_write_error)
        state.session.open(state.outbox.send)  # the hub's hot path calls the outbox directly
        rid = request_id_of(self)
        conn_id = self.session.conn_id
        log.info(
            "ws open conn=%s ip=%s rid=%s",
            conn_id,
            self.state.remote_ip,
            rid,
            extra={"conn_id": conn_id, "remote_ip": self.state.remote_ip, "request_id": rid},
        )
        # The upgrade request's and response's headers are not needed after the handshake.
        forget_handshake(self.request, stream)
        self._headers = _NO_HEADERS
        self.ui = _NO_UI  # template helpers, never used by a socket

    # -- sending ---------------------------------------------------------------------------------

    def deliver(self, pub: Publication) -> None:
        if self.outbox is not None:
            self.outbox.send(pub.ws_frame, not pub.durable)

    def send_json(self, msg: dict[str, Any]) -> None:
        if self.outbox is not None:
            self.outbox.send(ws_text_frame(encode(msg)), False)

    def _on_overflow(self) -> None:
        log.info("ws conn=%s closed: slow consumer (outbox full)", self.session.conn_id)
        self.session.close(SLOW_CONSUMER, "slow consumer: outgoing buffer full; reconnect and recover")

    def _on_write_error(self) -> None:
        self.close()

    def send_ping(self) -> None:
        self.state.answered = False
        try:
            self.ping()
        except tornado.websocket.WebSocketClosedError:
            pass

    def answered_since_ping(self) -> bool:
        return self.state.answered

    def on_pong(self, data: bytes) -> None:
        self.state.answered = True

    # -- receiving -------------------------------------------------------------------------------

    def _rate_ok(self) -> bool:
        now = time.monotonic()
        state = self.state
        state.tokens_left = min(RATE_BURST, state.tokens_left + (now - state.last_refill) * RATE_PER_SECOND)
        state.last_refill = now
        if state.tokens_left >= 1:
            state.tokens_left -= 1
            state.refused = 0
            return True
        state.refused += 1
        if state.refused > FLOOD_LIMIT:
            self.session.close(FLOODING, "too many messages")
        return False

    async def on_message(self, message: str | bytes) -> None:
        self.state.answered = True
        if isinstance(message, bytes):
            self.session.close(UNSUPPORTED_DATA, "binary frames are not supported; send JSON text")
            return
        if not self._rate_ok():
            self.session.error("rate_limited", "slow down: too many messages")
            return
        try:
            msg = decode(message)
        except BadJson as exc:
            self._refuse_malformed("bad_json", f"message refused: {exc.reason}")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self._refuse_malformed("bad_message", "a message is a JSON object with a string 'type'")
            return
        self.state.malformed = 0
        try:
            await self.session.handle(msg)
        except tornado.websocket.WebSocketClosedError:
            pass

    def _refuse_malformed(self, code: str, message: str) -> None:
        """Answer a frame that is not a message; before ``auth`` it closes the socket (4001), and
        the MALFORMED_LIMIT-th in a row closes it too (4000)."""
        self.session.error(code, message)
        self.state.malformed += 1
        if self.session.claims is None:
            self.session.close(NOT_AUTHENTICATED, code)
        elif self.state.malformed >= MALFORMED_LIMIT:
            self.session.close(BAD_MESSAGES, "too many malformed messages")

    def abort(self) -> None:
        """End the socket now, as Tornado does when a peer has not answered a close frame within
        5 s: the frame loop sees the end and ``on_close`` follows (the handler has let go of its
        protocol once ``close`` began, so the socket is reached through the outbox)."""
        if self.outbox is not None:
            self.outbox.abort()

    def on_close(self) -> None:
        if self.outbox is not None:
            self.outbox.close()
        self.session.closed()
        log.info(
            "ws close conn=%s code=%s dropped=%s",
            self.session.conn_id,
            self.close_code,
            self.outbox.dropped if self.outbox else 0,
            extra={"conn_id": self.session.conn_id},
        )
