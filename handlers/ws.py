"""The WebSocket endpoint ``/ws``: one connection multiplexes many channels (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import tornado.httputil
import tornado.util
import tornado.websocket

from config import Settings
from handlers.base import request_id_of
from handlers.origin import origin_allowed
from realtime.auth.tokens import Claims, TokenService
from realtime.engine.channels import ChannelPolicy, parse_channel
from realtime.engine.hub import Hub
from realtime.engine.outbox import Outbox
from realtime.engine.presence import PresenceTracker
from realtime.engine.publication import Publication, encode, ws_text_frame
from realtime.engine.rpc import RpcContext, RpcRegistry
from storage.errors import Refused

log = logging.getLogger("realtime.ws")

# Close codes (docs/protocol.md)
GOING_AWAY = 1001
UNSUPPORTED_DATA = 1003
NOT_AUTHENTICATED = 4001
FORBIDDEN = 4003
SLOW_CONSUMER = 4008
TOKEN_EXPIRED = 4010
FLOODING = 4029


def _nothing(frame: bytes, droppable: bool, pubs: Any) -> None:
    return None


_NO_HEADERS = tornado.httputil.HTTPHeaders()
_NO_UI = tornado.util.ObjectDict()

AUTH_TIMEOUT = 10.0
MAX_CHANNELS = 64
RATE_PER_SECOND = 20.0
RATE_BURST = 60.0
FLOOD_LIMIT = 200


class _Deps:
    __slots__ = ("settings", "hub", "tokens", "policy", "rpc", "presence")

    def __init__(self, *values: Any) -> None:
        for name, value in zip(self.__slots__, values, strict=True):
            setattr(self, name, value)


class RealtimeSocket(tornado.websocket.WebSocketHandler):
    def initialize(
        self,
        settings: Settings,
        hub: Hub,
        tokens: TokenService,
        policy: ChannelPolicy,
        rpc: RpcRegistry,
        presence: PresenceTracker,
    ) -> None:
        # Per-connection memory matters at 5,000 connections a process: the dependencies live in
        # one slotted object (read through the properties below), not as seven instance attributes.
        self._d = _Deps(settings, hub, tokens, policy, rpc, presence)
        self.conn_id = secrets.token_hex(6)
        self.claims: Claims | None = None
        self.channels: set[str] = set()
        self.outbox: Outbox | None = None
        # The hub's hot path (see Hub._flush); the outbox's send once open, a no-op before.
        self.push: Callable[[bytes, bool, Any], None] = _nothing
        self._timer: asyncio.TimerHandle | None = None  # the auth deadline, then the token's expiry
        self._tokens_left = RATE_BURST
        self._last_refill = time.monotonic()
        self._refused = 0
        self.server_close_code: int | None = None
        self._answered = True

    settings_ = property(lambda self: self._d.settings)
    hub = property(lambda self: self._d.hub)
    tokens = property(lambda self: self._d.tokens)
    policy = property(lambda self: self._d.policy)
    rpc = property(lambda self: self._d.rpc)
    presence = property(lambda self: self._d.presence)

    @property
    def user_id(self) -> str:
        return self.claims.user_id if self.claims is not None else ""

    @property
    def jti(self) -> str:
        return self.claims.jti if self.claims is not None else ""

    def check_origin(self, origin: str) -> bool:
        ok = origin_allowed(
            origin, self.request.host, self.settings_.base_url, self.settings_.allowed_origins
        )
        if not ok:
            log.warning("websocket origin refused: %s", origin[:200])
        return ok

    def get_compression_options(self) -> None:
        return None  # broadcasts are framed once and shared; per-connection deflate would undo that

    def open(self) -> None:
        assert self.ws_connection is not None
        stream = self.ws_connection.stream  # type: ignore[attr-defined]
        assert stream is not None
        self.outbox = Outbox(stream, self.settings_.ws_outbox_bytes, self._on_overflow, self._on_write_error)
        self.push = self.outbox.send  # the hub's hot path calls the outbox directly
        self.hub.connections.add(self)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(AUTH_TIMEOUT, self._auth_timeout)
        rid = request_id_of(self)
        log.info(
            "ws open conn=%s ip=%s rid=%s",
            self.conn_id,
            self.request.remote_ip,
            rid,
            extra={"conn_id": self.conn_id, "remote_ip": self.request.remote_ip, "request_id": rid},
        )
        # The upgrade request's and response's headers are not needed after the handshake.
        self.request.headers = _NO_HEADERS
        self._headers = _NO_HEADERS
        self.ui = _NO_UI  # template helpers, never used by a socket

    # -- sending ---------------------------------------------------------------------------------

    def deliver(self, pub: Publication) -> None:
        if self.outbox is not None:
            self.outbox.send(pub.ws_frame, not pub.durable)

    def send_json(self, obj: dict[str, Any]) -> None:
        if self.outbox is not None:
            self.outbox.send(ws_text_frame(encode(obj)), False)

    def error(self, code: str, message: str, **extra: Any) -> None:
        self.send_json({"type": "error", "code": code, "message": message, **extra})

    def _on_overflow(self) -> None:
        log.info("ws conn=%s closed: slow consumer (outbox full)", self.conn_id)
        self.close(SLOW_CONSUMER, "slow consumer: outgoing buffer full; reconnect and recover")

    def _on_write_error(self) -> None:
        self.close()

    def send_ping(self) -> None:
        self._answered = False
        try:
            self.ping()
        except tornado.websocket.WebSocketClosedError:
            pass

    def answered_since_ping(self) -> bool:
        return self._answered

    def on_pong(self, data: bytes) -> None:
        self._answered = True

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if self.server_close_code is None:
            self.server_close_code = code
        super().close(code, reason)

    def kick(self, channel: str, code: int, reason: str) -> None:
        if channel == "*":
            self.close(code, reason[:100])
            return
        if channel in self.channels:
            self.hub.track(self._leave(channel))
            self.send_json({"type": "unsubscribed", "channel": channel, "code": code, "reason": reason})

    # -- receiving -------------------------------------------------------------------------------

    def _rate_ok(self) -> bool:
        now = time.monotonic()
        self._tokens_left = min(RATE_BURST, self._tokens_left + (now - self._last_refill) * RATE_PER_SECOND)
        self._last_refill = now
        if self._tokens_left >= 1:
            self._tokens_left -= 1
            self._refused = 0
            return True
        self._refused += 1
        if self._refused > FLOOD_LIMIT:
            self.close(FLOODING, "too many messages")
        return False

    async def on_message(self, message: str | bytes) -> None:
        self._answered = True
        if isinstance(message, bytes):
            self.close(UNSUPPORTED_DATA, "binary frames are not supported; send JSON text")
            return
        if not self._rate_ok():
            self.error("rate_limited", "slow down: too many messages")
            return
        try:
            msg = json.loads(message)
        except ValueError:
            self.error("bad_json", "message is not valid JSON")
            return
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            self.error("bad_message", "a message is a JSON object with a string 'type'")
            return
        kind = msg["type"]
        if kind == "ping":
            self.send_json({"type": "pong", "ts": int(time.time() * 1000)})
            return
        if kind == "auth":
            await self._authenticate(msg.get("token"))
            return
        if self.claims is None:
            self.error("not_authenticated", 'send {"type": "auth", "token": ...} first')
            return
        try:
            if kind == "subscribe":
                await self._subscribe(msg)
            elif kind == "unsubscribe":
                await self._unsubscribe(msg)
            elif kind == "publish":
                await self._publish(msg)
            elif kind == "rpc":
                await self._rpc(msg)
            elif kind == "refresh":
                await self._authenticate(msg.get("token"), refresh=True)
            else:
                self.error("unknown_type", f"unknown message type {kind[:40]!r}")
        except tornado.websocket.WebSocketClosedError:
            pass

    async def _authenticate(self, token: Any, refresh: bool = False) -> None:
        try:
            claims = await self.tokens.authenticate(token)
        except Refused as exc:
            self.error(exc.code, exc.message)
            if self.claims is None:
                self.close(NOT_AUTHENTICATED, exc.code)
            return
        if self.claims is not None and claims.user_id != self.claims.user_id:
            self.error("token_invalid", "a refreshed token must be for the same user")
            return
        if self.claims is not None and not refresh:
            self.error("already_authenticated", "this connection is authenticated already")
            return
        self.claims = claims
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, claims.exp - time.time()), self._token_expired)
        self.send_json(
            {
                "type": "refreshed" if refresh else "welcome",
                "conn": self.conn_id,
                "user": claims.user_id,
                "role": claims.role,
                "exp": int(claims.exp),
            }
        )

    def _auth_timeout(self) -> None:
        if self.claims is None:
            self.close(NOT_AUTHENTICATED, "authenticate within 10 seconds")

    def _token_expired(self) -> None:
        self.send_json({"type": "token_expired"})
        self.close(TOKEN_EXPIRED, "token expired; reconnect with a fresh token")

    async def _subscribe(self, msg: dict[str, Any]) -> None:
        assert self.claims is not None
        channel = parse_channel(msg.get("channel"))
        ref = str(msg.get("channel"))[:140]
        if channel is None:
            self.error("bad_channel", "unknown or malformed channel name", channel=ref)
            return
        since = msg.get("since")
        if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
            self.error("bad_message", "'since' is a non-negative integer", channel=ref)
            return
        if channel.name in self.channels:
            self.error("already_subscribed", "already subscribed", channel=ref)
            return
        if len(self.channels) >= MAX_CHANNELS:
            self.error("too_many_channels", f"at most {MAX_CHANNELS} channels per connection", channel=ref)
            return
        refusal = await self.policy.can_subscribe(self.claims, channel)
        if refusal is not None:
            self.error(refusal, "you may not subscribe to this channel", channel=ref)
            return
        self.channels.add(channel.name)
        state = await self.policy.joined(self.claims, channel)
        if channel.kind in ("room", "backstage"):
            await self.presence.join(channel.name, self.user_id, self._presence_info())

        def ready(position: int, reset: bool) -> None:
            reply: dict[str, Any] = {"type": "subscribed", "channel": channel.name, "seq": position}
            if reset:
                reply["reset"] = True
            if state is not None:
                reply["state"] = state
            self.send_json(reply)

        try:
            await self.hub.subscribe(self, channel.name, since, ready)
        except Exception:
            log.exception("subscribe to %s failed", channel.name)
            await self._leave(channel.name, hub=False)
            self.error("unavailable", "subscription failed; try again", channel=ref)

    def _presence_info(self) -> dict[str, Any]:
        assert self.claims is not None
        return {"name": self.claims.name, "role": self.claims.role}

    async def _unsubscribe(self, msg: dict[str, Any]) -> None:
        name = msg.get("channel")
        if not isinstance(name, str) or name not in self.channels:
            self.error("not_subscribed", "not subscribed to that channel", channel=str(name)[:140])
            return
        await self._leave(name)
        self.send_json({"type": "unsubscribed", "channel": name})

    async def _leave(self, name: str, hub: bool = True) -> None:
        if name not in self.channels:
            return
        self.channels.discard(name)
        if hub:
            await self.hub.unsubscribe(self, name)
        channel = parse_channel(name)
        if channel is not None and self.claims is not None:
            if channel.kind in ("room", "backstage"):
                await self.presence.leave(name, self.user_id, self._presence_info())
            await self.policy.left(self.claims, channel)

    async def _publish(self, msg: dict[str, Any]) -> None:
        assert self.claims is not None
        channel = parse_channel(msg.get("channel"))
        event = msg.get("event")
        if channel is None or not isinstance(event, str) or not 0 < len(event) <= 40:
            self.error("bad_message", "publish needs a valid 'channel' and a string 'event'")
            return
        refusal = await self.policy.can_publish(self.claims, channel, event)
        if refusal is not None:
            self.error(refusal, "you may not publish that here", channel=channel.name)
            return
        data = msg.get("data")
        await self.hub.publish(
            channel.name, event, {"from": self.user_id, "name": self.claims.name, "data": data}, durable=False
        )

    async def _rpc(self, msg: dict[str, Any]) -> None:
        assert self.claims is not None
        rid = msg.get("id")
        if not (isinstance(rid, int | str) and not isinstance(rid, bool) and len(str(rid)) <= 64):
            self.error("bad_message", "rpc needs an 'id' (number or short string)")
            return
        name = msg.get("method")
        method = self.rpc.get(name) if isinstance(name, str) else None
        params = msg.get("params", {})
        if method is None:
            self.send_json(
                {
                    "type": "rpc_error",
                    "id": rid,
                    "error": {"code": "unknown_method", "message": "no such method"},
                }
            )
            return
        if not isinstance(params, dict):
            self.send_json(
                {
                    "type": "rpc_error",
                    "id": rid,
                    "error": {"code": "invalid", "message": "'params' must be an object"},
                }
            )
            return
        context = RpcContext(self.claims, self.conn_id, self.request.remote_ip or "")
        try:
            result = await method(context, params)
        except Refused as exc:
            self.send_json(
                {"type": "rpc_error", "id": rid, "error": {"code": exc.code, "message": exc.message}}
            )
            return
        except Exception:
            log.exception("rpc %s failed conn=%s", msg.get("method"), self.conn_id)
            self.send_json(
                {
                    "type": "rpc_error",
                    "id": rid,
                    "error": {"code": "internal_error", "message": "internal error"},
                }
            )
            return
        self.send_json({"type": "rpc_result", "id": rid, "result": result})

    def on_close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.outbox is not None:
            self.outbox.closed = True
        self.hub.connections.discard(self)
        channels = list(self.channels)
        if channels:
            self.hub.track(self._cleanup(channels))
        log.info(
            "ws close conn=%s code=%s dropped=%s",
            self.conn_id,
            self.close_code,
            self.outbox.dropped if self.outbox else 0,
            extra={"conn_id": self.conn_id},
        )

    async def _cleanup(self, channels: list[str]) -> None:
        for name in channels:
            try:
                await self._leave(name)
            except Exception:  # noqa: BLE001 - clean up the rest regardless
                log.warning("cleanup of %s failed", name, exc_info=True)
