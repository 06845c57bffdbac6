"""Caps on simultaneous live connections: per user (WebSockets and SSE streams together) and per
client address for sockets that have not authenticated yet (docs/protocol.md, close code 4009)."""

from __future__ import annotations

import asyncio

import pytest

from tests.sseclient import EventStream, ticket_for
from tests.wsclient import WsClient, close_all, settled

PER_USER = 3
ANONYMOUS = 2


@pytest.fixture
def services_env():
    return {"MAX_CONNECTIONS_PER_USER": str(PER_USER), "MAX_UNAUTHENTICATED_PER_ADDRESS": str(ANONYMOUS)}


async def live_sessions(services, user_id: str, n: int) -> None:
    """Until the server holds exactly ``n`` live sessions of ``user_id`` (a close is seen by the
    server after the client's close returns)."""

    async def poll() -> None:
        # The server offers no event for "this connection has ended"; poll that state.
        while sum(c.user_id == user_id for c in services.hub.connections) != n:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), 10)


async def refused(base_url: str, token: str) -> tuple[str, int | None]:
    """The ``error`` code and the close code of an ``auth`` past the cap."""
    client = await WsClient.connect(base_url)
    await client.send({"type": "auth", "token": token})
    error = await client.expect("error")
    return error["code"], (await client.closed()).code


@pytest.mark.gen_test(timeout=30)
async def test_a_user_past_the_cap_is_refused_with_4009_and_a_closed_one_frees_its_place(
    http_client, base_url, services
):
    tokens = [services.tokens.issue("ann", role="attendee") for _ in range(PER_USER + 1)]
    tabs = [await WsClient.connect(base_url, t) for t in tokens[:PER_USER]]
    assert await refused(base_url, tokens[PER_USER]) == ("too_many_connections", 4009)
    other = await WsClient.connect(base_url, services.tokens.issue("bob", role="attendee"))  # not Ann's cap
    await tabs[0].send({"type": "ping"})
    await tabs[0].expect("pong")  # the connections within the cap are untouched
    tabs.pop(0).close()
    await live_sessions(services, "ann", PER_USER - 1)
    tabs.append(await WsClient.connect(base_url, tokens[PER_USER]))
    await close_all(services, *tabs, other)


@pytest.mark.gen_test(timeout=30)
async def test_sse_streams_count_in_the_cap_and_are_refused_with_429(http_client, base_url, services):
    token = services.tokens.issue("ann", role="attendee")
    streams = []
    for _ in range(PER_USER - 1):
        ticket = await ticket_for(http_client, base_url, token)
        stream = await EventStream().open(base_url, ticket, ["user:ann"])
        await stream.event("subscribed")
        streams.append(stream)
    tab = await WsClient.connect(base_url, token)
    assert await refused(base_url, token) == ("too_many_connections", 4009)
    over = await EventStream().open(base_url, await ticket_for(http_client, base_url, token), ["user:ann"])
    assert (over.status, over.error["code"]) == (429, "too_many_connections")
    await over.close()
    await streams[0].close()
    await live_sessions(services, "ann", PER_USER - 1)
    again = await EventStream().open(base_url, await ticket_for(http_client, base_url, token), ["user:ann"])
    assert again.status == 200
    for stream in (*streams[1:], again):
        await stream.close()
    await close_all(services, tab)


@pytest.mark.gen_test(timeout=30)
async def test_unauthenticated_sockets_per_address_are_capped(http_client, base_url, services):
    waiting = [await WsClient.connect(base_url) for _ in range(ANONYMOUS)]
    for client in waiting:  # open and answered: the server has counted them
        await client.send({"type": "ping"})
        await client.expect("pong")
    extra = await WsClient.connect(base_url)
    closed = await extra.closed()
    assert (closed.code, closed.reason) == (4009, "too_many_connections")
    # One of them authenticates: it no longer counts as unauthenticated, so another may wait.
    await waiting[0].send({"type": "auth", "token": services.tokens.issue("ann", role="attendee")})
    await waiting[0].expect("welcome")
    another = await WsClient.connect(base_url)
    await another.send({"type": "ping"})
    await another.expect("pong")
    await close_all(services, *waiting, another)
    await settled(services)
