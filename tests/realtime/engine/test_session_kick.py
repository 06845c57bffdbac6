"""A kick reaches a session that is still joining the channel: a ban that lands while the session's
subscribe is under way (admitted before the ban was stored) closes it too."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from realtime.auth.tokens import Claims
from realtime.engine.broker_memory import MemoryBroker
from realtime.engine.channels import Channel
from realtime.engine.hub import Hub
from realtime.engine.limits import ConnectionLimits
from realtime.engine.presence import PresenceTracker
from realtime.engine.presence_memory import MemoryPresence
from realtime.engine.publication import Publication
from realtime.engine.rpc import RpcRegistry
from realtime.engine.session import Session, SessionDeps
from storage.history import History
from storage.idempotency import Idempotency
from storage.mongo import open_client


class HeldPolicy:
    """Admits everything; ``joined`` waits until the test lets it go (a slow attendance write)."""

    def __init__(self) -> None:
        self.joining = asyncio.Event()
        self.go_on = asyncio.Event()

    async def can_subscribe(self, claims: Claims, channel: Channel) -> str | None:
        return None

    async def can_publish(self, claims: Claims, channel: Channel, type: str) -> str | None:
        return None

    async def joined(self, claims: Claims, channel: Channel) -> dict[str, Any] | None:
        self.joining.set()
        await self.go_on.wait()
        return None

    async def left(self, claims: Claims, channel: Channel) -> None:
        return None


class Recording:
    """A transport that keeps what the session sent and how it closed."""

    remote_ip = "127.0.0.1"
    transport_name = "test"

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed_with: int | None = None

    def deliver(self, pub: Publication) -> None:
        return None

    def send_json(self, msg: dict[str, Any]) -> None:
        self.sent.append(msg)

    def close(self, code: int, reason: str) -> None:
        self.closed_with = code

    def send_ping(self) -> None:
        return None

    def answered_since_ping(self) -> bool:
        return True


@pytest.mark.gen_test
async def test_a_ban_during_the_subscribe_closes_the_joining_session(make_settings):
    settings = make_settings()
    client = open_client(settings.mongodb_url.reveal())
    db = client[settings.mongodb_database]
    hub = Hub(MemoryBroker(), History(db, 10), Idempotency(db, settings.idempotency_window))
    await hub.start()
    try:
        presence = PresenceTracker(MemoryPresence(), hub.publish, ttl=30, interval=1)
        policy = HeldPolicy()
        limits = ConnectionLimits(0, 0)
        deps = SessionDeps(hub, None, policy, RpcRegistry(), presence, limits)  # type: ignore[arg-type]
        transport = Recording()
        claims = Claims(sub="mallory", role="attendee", name="M", exp=4e9, jti="j")
        session = Session(deps, transport, claims)
        session.open(lambda frame, droppable, pubs: None)
        subscribing = asyncio.ensure_future(session.subscribe("room:w1", None))
        await policy.joining.wait()  # admitted, not yet among the channel's subscribers
        await hub.kick("room:w1", "mallory", 4003, "banned")
        policy.go_on.set()  # the kick was handed over first (the broker delivers in order)
        await subscribing
        assert transport.closed_with == 4003
        session.closed()
    finally:
        await hub.close()
        await client.close()
