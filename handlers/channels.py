"""REST access to channels: the integrators' publish API, history and presence."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field

from config import Settings
from handlers.base import JsonHandler
from handlers.bearer import api_key_name, bearer_claims
from handlers.json_input import JSON_VALUE_MARK
from handlers.limits import enforce
from realtime.auth.tokens import Claims, TokenService
from realtime.engine.channels import Channel, ChannelPolicy, parse_channel
from realtime.engine.hub import Hub
from realtime.engine.presence import PresenceTracker
from realtime.schema import Body, IdempotencyKey, Query, View, idempotency_key, read
from storage.errors import Kind, Refused
from storage.rate_limits import Limiter

MAX_TYPE_LEN = 40
RESERVED = ("presence", "subscribed", "reset", "error", "rpc")


def _not_reserved(type_: str) -> str:
    if type_.startswith(RESERVED):
        raise ValueError("reserved by the protocol")
    return type_


class Message(Body):
    """``POST /api/channels/{channel}/messages``."""

    type: Annotated[
        str,
        Field(min_length=1, max_length=MAX_TYPE_LEN, description=f"not starting with {', '.join(RESERVED)}"),
        AfterValidator(_not_reserved),
    ]
    data: Any = Field(
        description="any JSON value; delivered as it is",
        json_schema_extra={JSON_VALUE_MARK: True},  # handlers/openapi.py puts the JsonValue schema here
    )
    durable: bool = Field(True, description="false: not kept in history, no seq")
    idempotency_key: IdempotencyKey | None = idempotency_key()


class Published(View):
    channel: str
    seq: int | None = Field(description="the message's place in the channel; null when not durable")


class ChannelMessage(View):
    type: str
    channel: str
    data: Any
    ts: int = Field(description="milliseconds since the epoch")
    seq: int


class ChannelHistory(View):
    channel: str
    messages: list[ChannelMessage]
    next: int | None = Field(description="the since of the next page; null at the end")


class ChannelPresence(View):
    channel: str
    count: int
    offset: int
    users: list[dict[str, Any]]


def _count(lo: int, hi: int, default: int) -> Any:
    return Field(default, ge=lo, le=hi, strict=False)


class HistoryQuery(Query):
    since: Annotated[int, _count(0, 2**62, 0)]
    limit: Annotated[int, _count(1, 1000, 100)]


class PresenceQuery(Query):
    offset: Annotated[int, _count(0, 10**7, 0)]
    limit: Annotated[int, _count(1, 500, 50)]


class _ChannelHandler(JsonHandler):
    def initialize(
        self,
        settings: Settings,
        hub: Hub,
        tokens: TokenService,
        policy: ChannelPolicy,
        presence: PresenceTracker,
        limits: Limiter,  # the publish API's (server.make_publish_limits)
    ) -> None:
        self.limits = limits
        self.settings_ = settings
        self.hub = hub
        self.tokens = tokens
        self.policy = policy
        self.presence = presence

    def channel(self, name: str) -> Channel:
        channel = parse_channel(name)
        if channel is None:
            raise Refused(Kind.INVALID, "bad_channel", "unknown or malformed channel name")
        return channel

    async def caller(self) -> Claims | None:
        """None for an integrator API key, else the token's claims (401 without either): who asks
        is settled before what is asked is read, so a request without credentials is always 401."""
        if api_key_name(self, self.settings_) is not None:
            return None
        return await bearer_claims(self, self.tokens)

    async def readable(self, name: str) -> Channel:
        claims = await self.caller()
        channel = self.channel(name)
        if claims is not None:
            refusal = await self.policy.can_subscribe(claims, channel)
            if refusal is not None:
                raise Refused(Kind.FORBIDDEN, refusal, f"you may not read {channel.name}")
        return channel


class PublishHandler(_ChannelHandler):
    """``POST /api/channels/{channel}/messages``: publish with an API key, or as a host of the webinar."""

    async def post(self, name: str) -> None:
        claims = await self.caller()
        channel = self.channel(name)
        if claims is None:
            publisher = f"key:{api_key_name(self, self.settings_)}"
        else:
            if not claims.is_host or channel.kind == "user":
                raise Refused(Kind.FORBIDDEN, "forbidden", "publishing needs an API key or a host token")
            backstage = Channel("backstage", channel.id)
            if await self.policy.can_subscribe(claims, backstage) is not None:
                raise Refused(Kind.FORBIDDEN, "forbidden", "only hosts of this webinar may publish here")
            publisher = f"user:{claims.user_id}"
        await enforce(self.limits, f"publish:{publisher}", self.settings_.publish_rate, 1.0, "publishes")
        message = read(Message, self.json_body())

        async def publish() -> dict[str, Any]:
            seq = await self.hub.publish(channel.name, message.type, message.data, durable=message.durable)
            return {"channel": channel.name, "seq": seq}

        # a retry with the same idempotency_key answers with the first publish's seq
        scope = f"publish:{publisher}:{channel.name}"
        self.send(await self.hub.idempotency.once(scope, message.idempotency_key, publish), 202)


class HistoryHandler(_ChannelHandler):
    """``GET /api/channels/{channel}/history?since=N&limit=M``: durable messages in order."""

    async def get(self, name: str) -> None:
        channel = await self.readable(name)
        query = self.query(HistoryQuery)
        since, limit = query.since, query.limit
        entries = await self.hub.history.read(channel.name, after=since, limit=limit)
        messages: list[dict[str, Any]] = [
            {"type": e.type, "channel": e.channel, "data": e.data, "ts": e.ts, "seq": e.seq} for e in entries
        ]
        self.send(
            {
                "channel": channel.name,
                "messages": messages,
                "next": messages[-1]["seq"] if len(messages) == limit else None,
            }
        )


class PresenceHandler(_ChannelHandler):
    """``GET /api/channels/{channel}/presence?offset=&limit=``: live count and a page of the roster."""

    async def get(self, name: str) -> None:
        channel = await self.readable(name)
        query = self.query(PresenceQuery)
        offset, limit = query.offset, query.limit
        total, users = await self.presence.backend.roster(channel.name, offset, limit)
        self.send({"channel": channel.name, "count": total, "offset": offset, "users": users})
