"""A live session: one client connection's life, whichever transport carries it.

The session authenticates (within ``AUTH_TIMEOUT``, then until the token expires unless refreshed),
subscribes through the ChannelPolicy (presence for rooms and backstages, attendance and the state
snapshot through ``policy.joined``/``left``), leaves, publishes the client's ephemeral events,
answers RPCs, obeys kicks and, when its connection ends, leaves every channel. It is what the hub
registers and fans out to: ``push`` is the transport's hot path, which the hub calls directly.

A transport (handlers/ws.py, handlers/sse.py) only frames: it renders the session's messages and
publications for its wire, closes its connection with a code, and calls :meth:`Session.closed` when
the connection has ended. Protocol and codes: docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

from realtime.auth.tokens import Claims, TokenService
from realtime.engine.channels import Channel, ChannelPolicy, parse_channel
from realtime.engine.hub import Hub
from realtime.engine.limits import TOO_MANY_CONNECTIONS, ConnectionLimits, Place
from realtime.engine.presence import PresenceTracker
from realtime.engine.publication import Publication
from realtime.engine.rpc import RpcContext, RpcRegistry
from realtime.engine.transport import Ended, Push, Transport, push_nothing
from storage.errors import Kind, Refused

log = logging.getLogger("realtime.engine.session")

# Close codes the session decides (docs/protocol.md); a transport adds its own framing errors.
GOING_AWAY = 1001
NOT_AUTHENTICATED = 4001
KICKED = 4003  # banned from a channel of the connection, or its token was logged out
SLOW_CONSUMER = 4008
TOKEN_EXPIRED = 4010

AUTH_TIMEOUT = 10.0
MAX_CHANNELS = 64
PRESENCE_KINDS = ("room", "backstage")


@dataclass(frozen=True, slots=True)
class SessionDeps:
    """What every session of a process shares (one object, not one per connection)."""

    hub: Hub
    tokens: TokenService
    policy: ChannelPolicy
    rpc: RpcRegistry
    presence: PresenceTracker
    limits: ConnectionLimits


class Session:
    # Per-connection memory matters at 5,000 connections a process: slots, the shared deps, and one
    # timer (the auth deadline, then the token's expiry).
    __slots__ = (
        "deps",
        "transport",
        "conn_id",
        "claims",
        "channels",
        "push",
        "close_code",
        "_timer",
        "_place",
        "_checking",
    )

    def __init__(self, deps: SessionDeps, transport: Transport, claims: Claims | None = None) -> None:
        """``claims`` when the transport authenticated the client before (an SSE ticket)."""
        self.deps = deps
        self.transport = transport
        self.conn_id = secrets.token_hex(6)
        self.claims = claims
        self.channels: set[str] = set()
        self.push: Push = push_nothing  # the hub's hot path (see Hub._flush); the transport's once open
        self.close_code: int | None = None  # the code this side closed with, if it did
        self._timer: asyncio.TimerHandle | None = None
        self._place: Place | None = None  # what it holds in the connection limits
        self._checking = False  # an ``auth`` it sent is being checked: the auth deadline is met

    @property
    def user_id(self) -> str:
        return self.claims.user_id if self.claims is not None else ""

    @property
    def jti(self) -> str:
        return self.claims.jti if self.claims is not None else ""

    async def reserve(self) -> None:
        """Take this authenticated session's place in its user's connection cap, or ``Refused``
        ``too_many_connections`` (a transport that authenticated the client itself calls this
        before it starts; :meth:`closed` gives the place back)."""
        assert self.claims is not None and self._place is None
        self._place = await self.deps.limits.take_user(self.claims.user_id, self.conn_id)

    @property
    def transport_name(self) -> str:
        return self.transport.transport_name

    def open(self, push: Push) -> None:
        """The connection is up: join the hub's registry and start the clock (``auth`` within
        AUTH_TIMEOUT, or the token's expiry when already authenticated). An unauthenticated one
        past its address's cap is closed with 4009 at once."""
        self.push = push
        self.deps.hub.opened(self)
        if self.claims is not None:
            self._expire_with(self.claims)
            return
        try:
            self._place = self.deps.limits.take_address(self.transport.remote_ip)
        except Refused as exc:
            self.close(TOO_MANY_CONNECTIONS, exc.code)
            return
        self._timer = asyncio.get_running_loop().call_later(AUTH_TIMEOUT, self._auth_timeout)

    def closed(self) -> None:
        """The transport's connection has ended: give back its place in the limits, leave the
        registry and, in the background (which the hub lets finish on shutdown), every channel."""
        if self._timer is not None:
            self._timer.cancel()
        if self._place is not None:
            self.deps.limits.give_back(self._place)
            self._place = None
        self.deps.hub.ended(self)
        if self.channels:
            self.deps.hub.track(self._cleanup(list(self.channels)))
        else:
            self._detach()

    def _detach(self) -> None:
        """Let go of the ended transport (it refers to this session: freed by reference counting
        then, not by a full collection, the longest pause of the loop)."""
        self.transport = Ended(self.transport)
        self.push = push_nothing

    # -- to the client ---------------------------------------------------------------------------

    def deliver(self, pub: Publication) -> None:
        self.transport.deliver(pub)

    def send(self, msg: dict[str, Any]) -> None:
        self.transport.send_json(msg)

    def error(self, code: str, message: str, **extra: Any) -> None:
        self.send({"type": "error", "code": code, "message": message, **extra})

    def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code = code
        self.transport.close(code, reason)

    def abort(self) -> None:
        self.transport.abort()

    def kick(self, channel: str, code: int, reason: str) -> None:
        """Close the connection with ``code`` if it is on ``channel`` (``*``: whichever channels);
        leaving its channels follows the close as for any other end."""
        if channel == "*" or channel in self.channels:
            self.close(code, reason[:100])

    def send_ping(self) -> None:
        self.transport.send_ping()

    def answered_since_ping(self) -> bool:
        return self.transport.answered_since_ping()

    # -- from the client -------------------------------------------------------------------------

    async def handle(self, msg: dict[str, Any]) -> None:
        """One client message (a JSON object with a string ``type``). A refusal is answered with
        ``error``; before the connection has authenticated it also closes it with 4001 (a refused
        ``auth``, or a message other than ``auth`` and ``ping``), or 4009 past the user's cap."""
        kind = msg["type"]
        try:
            if kind == "ping":
                self.send({"type": "pong", "ts": int(time.time() * 1000)})
            elif kind == "auth":
                await self.authenticate(msg.get("token"))
            elif self.claims is None:
                raise Refused(
                    Kind.UNAUTHORIZED, "not_authenticated", 'send {"type": "auth", "token": ...} first'
                )
            elif kind == "subscribe":
                await self.subscribe(msg.get("channel"), msg.get("since"))
            elif kind == "unsubscribe":
                await self.unsubscribe(msg.get("channel"))
            elif kind == "publish":
                await self.publish(msg.get("channel"), msg.get("event"), msg.get("data"))
            elif kind == "rpc":
                await self.rpc(msg)
            elif kind == "refresh":
                await self.authenticate(msg.get("token"), refresh=True)
            else:
                raise Refused(Kind.INVALID, "unknown_type", f"unknown message type {kind[:40]!r}")
        except Refused as exc:
            self.error(exc.code, exc.message, **exc.extra)
            if self.claims is None:  # a refused auth, or anything but auth and ping before it
                over = exc.code == "too_many_connections"
                self.close(TOO_MANY_CONNECTIONS if over else NOT_AUTHENTICATED, exc.code)

    async def authenticate(self, token: Any, refresh: bool = False) -> None:
        """Check ``token``; an ``auth`` that arrived before the deadline meets it, however long its
        check waits (in a join storm, behind thousands of others): a refusal still closes."""
        self._checking = self.claims is None
        try:
            claims = await self.deps.tokens.authenticate(token)
            if self.claims is not None and claims.user_id != self.claims.user_id:
                raise Refused(
                    Kind.UNAUTHORIZED, "token_invalid", "a refreshed token must be for the same user"
                )
            if self.claims is not None and not refresh:
                raise Refused(
                    Kind.CONFLICT, "already_authenticated", "this connection is authenticated already"
                )
            if self.claims is None:
                await self._count_as_user(claims)
        finally:
            self._checking = False
        self.claims = claims
        self._expire_with(claims)
        self.send(
            {
                "type": "refreshed" if refresh else "welcome",
                "conn": self.conn_id,
                "user": claims.user_id,
                "role": claims.role,
                "exp": int(claims.exp),
            }
        )

    async def _count_as_user(self, claims: Claims) -> None:
        """Move from the address's count of unauthenticated sockets to the user's count."""
        place = await self.deps.limits.take_user(claims.user_id, self.conn_id)
        if self not in self.deps.hub.connections:  # it closed while authenticating
            self.deps.limits.give_back(place)
            raise Refused(Kind.CONFLICT, "closed", "the connection closed while authenticating")
        if self._place is not None:
            self.deps.limits.give_back(self._place)
        self._place = place

    def _expire_with(self, claims: Claims) -> None:
        if self._timer is not None:
            self._timer.cancel()
        delay = max(0.0, claims.exp - time.time())
        self._timer = asyncio.get_running_loop().call_later(delay, self._token_expired)

    def _auth_timeout(self) -> None:
        if self.claims is None and not self._checking:
            self.close(NOT_AUTHENTICATED, "authenticate within 10 seconds")

    def _token_expired(self) -> None:
        self.send({"type": "token_expired"})
        self.close(TOKEN_EXPIRED, "token expired; reconnect with a fresh token")

    async def subscribe(self, name: Any, since: Any) -> None:
        await self.join(await self.admit(name, since), since)

    async def admit(self, name: Any, since: Any) -> Channel:
        """The channel named ``name`` if this session may subscribe to it from ``since`` now; else
        ``Refused`` (with the channel named in ``extra``)."""
        assert self.claims is not None
        channel = parse_channel(name)
        ref = str(name)[:140]
        if channel is None:
            raise Refused(Kind.INVALID, "bad_channel", "unknown or malformed channel name", channel=ref)
        if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
            raise Refused(Kind.INVALID, "bad_message", "'since' is a non-negative integer", channel=ref)
        if channel.name in self.channels:
            raise Refused(Kind.CONFLICT, "already_subscribed", "already subscribed", channel=ref)
        if len(self.channels) >= MAX_CHANNELS:
            raise Refused(
                Kind.INVALID,
                "too_many_channels",
                f"at most {MAX_CHANNELS} channels per connection",
                channel=ref,
            )
        refusal = await self.deps.policy.can_subscribe(self.claims, channel)
        if refusal is not None:
            raise Refused(Kind.FORBIDDEN, refusal, "you may not subscribe to this channel", channel=ref)
        return channel

    async def join(self, channel: Channel, since: int | None) -> None:
        """Subscribe to an admitted channel: the policy's ``joined`` (attendance, the snapshot sent
        with ``subscribed``), presence, then the hub (backlog after ``since``, then live)."""
        assert self.claims is not None
        self.channels.add(channel.name)
        state = await self.deps.policy.joined(self.claims, channel)
        if channel.kind in PRESENCE_KINDS:
            await self.deps.presence.join(channel.name, self.user_id, self._presence_info())

        # A snapshot's history ends at its ``seq``: a fresh joiner continues from exactly there, so
        # what is published while it is admitted (attendance, presence) is replayed, not skipped.
        snapshot_at = state.get("seq") if since is None and state is not None else None
        if isinstance(snapshot_at, int):
            since = snapshot_at

        def ready(position: int, reset: bool) -> None:
            if isinstance(snapshot_at, int) and not reset:
                position = snapshot_at
            reply: dict[str, Any] = {"type": "subscribed", "channel": channel.name, "seq": position}
            if reset:
                reply["reset"] = True
            if state is not None:
                reply["state"] = state
            self.send(reply)

        try:
            await self.deps.hub.subscribe(self, channel.name, since, ready)
        except Exception:
            log.exception("subscribe to %s failed", channel.name)
            await self._leave(channel.name, hub=False)
            raise Refused(
                Kind.UNAVAILABLE, "unavailable", "subscription failed; try again", channel=channel.name
            ) from None

    def _presence_info(self) -> dict[str, Any]:
        assert self.claims is not None
        return {"name": self.claims.name, "role": self.claims.role}

    async def unsubscribe(self, name: Any) -> None:
        if not isinstance(name, str) or name not in self.channels:
            raise Refused(
                Kind.INVALID, "not_subscribed", "not subscribed to that channel", channel=str(name)[:140]
            )
        await self._leave(name)
        self.send({"type": "unsubscribed", "channel": name})

    async def _leave(self, name: str, hub: bool = True) -> None:
        if name not in self.channels:
            return
        self.channels.discard(name)
        if hub:
            await self.deps.hub.unsubscribe(self, name)
        channel = parse_channel(name)
        if channel is not None and self.claims is not None:
            if channel.kind in PRESENCE_KINDS:
                await self.deps.presence.leave(name, self.user_id, self._presence_info())
            await self.deps.policy.left(self.claims, channel)

    async def _cleanup(self, channels: list[str]) -> None:
        try:
            for name in channels:
                try:
                    await self._leave(name)
                except Exception:  # noqa: BLE001 - clean up the rest regardless
                    log.warning("cleanup of %s failed", name, exc_info=True)
        finally:
            self._detach()

    async def publish(self, name: Any, event: Any, data: Any) -> None:
        """A client publish: ephemeral, where the channel's policy allows ``event``."""
        assert self.claims is not None
        channel = parse_channel(name)
        if channel is None or not isinstance(event, str) or not 0 < len(event) <= 40:
            raise Refused(Kind.INVALID, "bad_message", "publish needs a valid 'channel' and a string 'event'")
        refusal = await self.deps.policy.can_publish(self.claims, channel, event)
        if refusal is not None:
            raise Refused(Kind.FORBIDDEN, refusal, "you may not publish that here", channel=channel.name)
        body = {"from": self.user_id, "name": self.claims.name, "data": data}
        await self.deps.hub.publish(channel.name, event, body, durable=False)

    async def rpc(self, msg: dict[str, Any]) -> None:
        """An RPC, answered through the registry's envelope (realtime/engine/rpc.py)."""
        assert self.claims is not None
        context = RpcContext(self.claims, self.conn_id, self.transport.remote_ip)
        self.send(await self.deps.rpc.answer(context, msg))
