"""Dead peers: a connection that stops answering pings is closed; a live one stays."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os

import pytest

from tests.wsclient import WsClient


@pytest.fixture
def services_env():
    # Short enough for a quick test, long enough for a live client to answer on a busy machine.
    return {"WS_PING_INTERVAL": "1.5", "WS_PING_TIMEOUT": "1.0"}


async def silent_peer(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Completes the WebSocket handshake, then never reads or answers again (a half-open peer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return reader, writer


@pytest.mark.gen_test(timeout=20)
async def test_unanswered_pings_close_the_connection_and_answered_ones_keep_it(
    http_server, base_url, http_port, services
):
    alive = await WsClient.connect(
        base_url.replace("http://", "ws://") + "/ws", services.tokens.issue("u1", role="attendee")
    )
    reader, writer = await silent_peer(http_port)
    assert len(services.hub.connections) == 2

    async def only_one_left() -> None:
        # The hub offers no "connection closed" event to await; poll its state with a deadline.
        while len(services.hub.connections) != 1:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    await asyncio.wait_for(only_one_left(), 10)
    # The remaining connection is the one whose client answers pings, several rounds later too.
    await alive.send({"type": "ping"})
    await alive.expect("pong")
    assert [c.user_id for c in services.hub.connections] == ["u1"]
    alive.close()
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
