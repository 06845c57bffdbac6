"""A join storm's slow authentication: a client that sent ``auth`` in time is not closed by the auth
deadline while the server is still checking its token (in a storm the check waits behind thousands
of others; closing then made every such client reconnect and the storm grow)."""

from __future__ import annotations

import asyncio

import pytest

from realtime.auth.tokens import TokenService
from realtime.engine.broker_memory import MemoryBroker
from realtime.engine.hub import Hub
from realtime.engine.limits import ConnectionLimits
from realtime.engine.presence import PresenceTracker
from realtime.engine.presence_memory import MemoryPresence
from realtime.engine.rpc import RpcRegistry
from realtime.engine.session import Session, SessionDeps
from storage.history import History
from storage.idempotency import Idempotency
from storage.mongo import open_client
from tests.realtime.engine.test_session_kick import HeldPolicy, Recording


@pytest.mark.gen_test
async def test_the_auth_deadline_spares_a_client_whose_auth_is_being_checked(make_settings):
    settings = make_settings(JWT_KEYS="k1:" + "s" * 40)
    checking, go_on = asyncio.Event(), asyncio.Event()

    async def slow_revocation_check(jti: str, host: str, issued_at: float) -> bool:
        checking.set()
        await go_on.wait()
        return False

    tokens = TokenService(settings, is_revoked=slow_revocation_check)
    client = open_client(settings.mongodb_url.reveal())
    db = client[settings.mongodb_database]
    hub = Hub(MemoryBroker(), History(db, 10), Idempotency(db, settings.idempotency_window))
    await hub.start()
    try:
        presence = PresenceTracker(MemoryPresence(), hub.publish, ttl=30, interval=1)
        deps = SessionDeps(hub, tokens, HeldPolicy(), RpcRegistry(), presence, ConnectionLimits(0, 0))
        transport = Recording()
        session = Session(deps, transport)
        session.open(lambda frame, droppable, pubs: None)
        authenticating = asyncio.ensure_future(
            session.handle({"type": "auth", "token": tokens.issue("u1", role="attendee")})
        )
        await checking.wait()
        session._auth_timeout()  # the deadline passes while the token is being checked
        assert transport.closed_with is None
        go_on.set()
        await authenticating
        assert [m["type"] for m in transport.sent] == ["welcome"] and transport.closed_with is None
        session.closed()

        silent = Session(deps, Recording())  # one that never sent auth is still closed
        silent.open(lambda frame, droppable, pubs: None)
        silent._auth_timeout()
        assert silent.transport.closed_with == 4001  # type: ignore[attr-defined]
        silent.closed()
    finally:
        await hub.close()
        await client.close()
