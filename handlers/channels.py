"""REST access to channels: the integrators' publish API, history and presence."""

from __future__ import annotations

from typing import Any

from config import Settings
from handlers.base import JsonHandler
from handlers.bearer import api_key_name, bearer_claims
from realtime.auth.tokens import TokenService
from realtime.engine.channels import Channel, ChannelPolicy, parse_channel
from realtime.engine.hub import Hub
from realtime.engine.presence import PresenceTracker
from storage.errors import Kind, Refused

MAX_TYPE_LEN = 40


class _ChannelHandler(JsonHandler):
    def initialize(
        self,
        settings: Settings,
        hub: Hub,
        tokens: TokenService,
        policy: ChannelPolicy,
        presence: PresenceTracker,
    ) -> None:
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

    async def authorise_read(self, channel: Channel) -> None:
        if api_key_name(self, self.settings_) is not None:
            return
        claims = await bearer_claims(self, self.tokens)
        refusal = await self.policy.can_subscribe(claims, channel)
        if refusal is not None:
            raise Refused(Kind.FORBIDDEN, refusal, f"you may not read {channel.name}")

    def int_arg(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise Refused(Kind.INVALID, "invalid", f"{name}: expected an integer") from None
        if not lo <= value <= hi:
            raise Refused(Kind.INVALID, "invalid", f"{name}: must be between {lo} and {hi}")
        return value


class PublishHandler(_ChannelHandler):
    """``POST /api/channels/{channel}/messages``: publish with an API key, or as a host of the webinar."""

    async def post(self, name: str) -> None:
        channel = self.channel(name)
        if api_key_name(self, self.settings_) is None:
            claims = await bearer_claims(self, self.tokens)
            if not claims.is_host or channel.kind == "user":
                raise Refused(Kind.FORBIDDEN, "forbidden", "publishing needs an API key or a host token")
            backstage = Channel("backstage", channel.id)
            if await self.policy.can_subscribe(claims, backstage) is not None:
                raise Refused(Kind.FORBIDDEN, "forbidden", "only hosts of this webinar may publish here")
        body = self.json_body()
        type_ = body.get("type")
        if not isinstance(type_, str) or not 0 < len(type_) <= MAX_TYPE_LEN:
            raise Refused(Kind.INVALID, "invalid", f"type: a string of 1 to {MAX_TYPE_LEN} characters")
        if type_.startswith(("presence", "subscribed", "reset", "error", "rpc")):
            raise Refused(Kind.INVALID, "invalid", "type: reserved by the protocol")
        durable = body.get("durable", True)
        if not isinstance(durable, bool):
            raise Refused(Kind.INVALID, "invalid", "durable: true or false")
        if "data" not in body:
            raise Refused(Kind.INVALID, "invalid", "data: required")
        seq = await self.hub.publish(channel.name, type_, body["data"], durable=durable)
        self.send({"channel": channel.name, "seq": seq}, 202)


class HistoryHandler(_ChannelHandler):
    """``GET /api/channels/{channel}/history?since=N&limit=M``: durable messages in order."""

    async def get(self, name: str) -> None:
        channel = self.channel(name)
        await self.authorise_read(channel)
        since = self.int_arg("since", 0, 0, 2**62)
        limit = self.int_arg("limit", 100, 1, 1000)
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
        channel = self.channel(name)
        await self.authorise_read(channel)
        offset = self.int_arg("offset", 0, 0, 10**7)
        limit = self.int_arg("limit", 50, 1, 500)
        total, users = await self.presence.backend.roster(channel.name, offset, limit)
        self.send({"channel": channel.name, "count": total, "offset": offset, "users": users})
