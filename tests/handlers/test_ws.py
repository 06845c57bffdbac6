"""The WebSocket endpoint: authentication, subscribe, recovery, and every kind of bad input."""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import socket
import struct
import sys

import pytest
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClosedError

from handlers.ws import RealtimeSocket
from handlers.ws_memory import READERS
from realtime.engine.outbox import Outbox
from realtime.engine.session import Session
from tests.slowreader import overrun
from tests.wsclient import Closed, WsClient


@pytest.fixture
def ws_url(http_server, base_url):
    return base_url.replace("http://", "ws://") + "/ws"


@pytest.fixture
def token(services):
    def make(user="u1", role="attendee", **kw):
        return services.tokens.issue(user, role=role, name=user.upper(), **kw)

    return make


@pytest.mark.gen_test
async def test_auth_subscribe_and_receive(ws_url, token, services):
    client = await WsClient.connect(ws_url, token())
    sub = await client.subscribe("user:u1")
    assert sub["seq"] == 0
    seq = await services.hub.publish("user:u1", "notification", {"title": "hello"})
    msg = (await client.messages("user:u1", 1))[0]
    assert msg["type"] == "notification" and msg["seq"] == seq and msg["data"] == {"title": "hello"}
    assert isinstance(msg["ts"], int)
    await client.send({"type": "ping"})
    assert (await client.expect("pong"))["ts"] > 0
    client.close()


@pytest.mark.gen_test
async def test_reconnect_with_since_gets_exactly_the_missed_messages(ws_url, token, services):
    client = await WsClient.connect(ws_url, token())
    await client.subscribe("user:u1")
    for i in range(3):
        await services.hub.publish("user:u1", "notification", {"i": i})
    seen = await client.messages("user:u1", 3)
    client.close()
    for i in range(3, 6):
        await services.hub.publish("user:u1", "notification", {"i": i})
    again = await WsClient.connect(ws_url, token())
    sub = await again.subscribe("user:u1", since=seen[-1]["seq"])
    assert sub["seq"] == 6 and "reset" not in sub
    missed = await again.messages("user:u1", 3)
    await services.hub.publish("user:u1", "notification", {"i": 6})
    live = await again.messages("user:u1", 1)
    assert [m["data"]["i"] for m in missed + live] == [3, 4, 5, 6]
    assert [m["seq"] for m in missed + live] == [4, 5, 6, 7]
    again.close()


@pytest.mark.gen_test
async def test_messages_before_auth_and_bad_tokens(ws_url, token, services):
    client = await WsClient.connect(ws_url)
    await client.send({"type": "ping"})  # the one message besides auth a socket may send first
    await client.expect("pong")
    await client.send({"type": "auth", "token": "not-a-jwt"})
    assert (await client.expect("error"))["code"] == "token_invalid"
    closed = await client.closed()
    assert closed.code == 4001
    expired = services.tokens.issue("u1", role="attendee", ttl=-120)
    client = await WsClient.connect(ws_url)
    await client.send({"type": "auth", "token": expired})
    assert (await client.expect("error"))["code"] == "token_expired"
    assert (await client.closed()).code == 4001


@pytest.mark.parametrize(
    "frame,code",
    [
        ('{"type": "subscribe", "channel": "user:u1"}', "not_authenticated"),
        ('{"type": "rpc", "id": 1, "method": "chat.send", "params": {}}', "not_authenticated"),
        ('{"type": "refresh", "token": "x"}', "not_authenticated"),
        ('{"type": "teleport"}', "not_authenticated"),
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_message"),
    ],
)
@pytest.mark.gen_test
async def test_a_message_other_than_auth_or_ping_before_auth_closes_with_4001(ws_url, frame, code):
    client = await WsClient.connect(ws_url)
    await client.conn.write_message(frame)
    assert (await client.expect("error"))["code"] == code
    closed = await client.closed()
    assert (closed.code, closed.reason) == (4001, code)


@pytest.mark.gen_test
async def test_repeated_malformed_frames_close_with_4000(ws_url, token):
    client = await WsClient.connect(ws_url, token())
    for frame in ["{not json", "[1, 2]"] * 4 + ["{not json"]:  # 9 in a row are answered
        await client.conn.write_message(frame)
        assert (await client.expect("error"))["code"] in ("bad_json", "bad_message")
    await client.send({"type": "ping"})  # a well-formed message starts the count again
    await client.expect("pong")
    for _ in range(9):
        await client.conn.write_message("{not json")
        assert (await client.expect("error"))["code"] == "bad_json"
    await client.conn.write_message("{not json")  # the 10th in a row
    assert (await client.expect("error"))["code"] == "bad_json"
    closed = await client.closed()
    assert (closed.code, closed.reason) == (4000, "too many malformed messages")


@pytest.mark.gen_test
async def test_malformed_and_unknown_messages_keep_the_connection(ws_url, token):
    client = await WsClient.connect(ws_url, token())
    await client.conn.write_message("{not json")
    assert (await client.expect("error"))["code"] == "bad_json"
    await client.conn.write_message("[1, 2]")
    assert (await client.expect("error"))["code"] == "bad_message"
    await client.send({"type": "teleport"})
    assert (await client.expect("error"))["code"] == "unknown_type"
    await client.send({"type": "subscribe", "channel": "nope:1"})
    assert (await client.expect("error"))["code"] == "bad_channel"
    await client.send({"type": "subscribe", "channel": "user:u1", "since": "yesterday"})
    assert (await client.expect("error"))["code"] == "bad_message"
    await client.send({"type": "subscribe", "channel": "user:someone-else"})
    refused = await client.expect("error")
    assert refused["code"] == "forbidden" and refused["channel"] == "user:someone-else"
    await client.send({"type": "subscribe", "channel": "room:w1"})
    assert (await client.expect("error"))["code"] == "forbidden"
    await client.send({"type": "rpc", "id": 1, "method": "nope.nothing", "params": {}})
    assert (await client.expect("rpc_error"))["error"]["code"] == "unknown_method"
    await client.send({"type": "unsubscribe", "channel": "user:u1"})
    assert (await client.expect("error"))["code"] == "not_subscribed"
    # still serving this client
    assert (await client.subscribe("user:u1"))["channel"] == "user:u1"
    await client.send({"type": "subscribe", "channel": "user:u1"})
    assert (await client.expect("error"))["code"] == "already_subscribed"
    client.close()


@pytest.mark.gen_test
async def test_binary_frames_close_with_1003(ws_url, token):
    client = await WsClient.connect(ws_url, token())
    await client.conn.write_message(b"\x00\x01", binary=True)
    assert (await client.closed()).code == 1003


@pytest.mark.gen_test
async def test_oversize_frames_close_with_1009_and_others_keep_working(ws_url, token):
    client = await WsClient.connect(ws_url, token())
    other = await WsClient.connect(ws_url, token("u2"))
    await client.conn.write_message(json.dumps({"type": "ping", "pad": "x" * 70_000}))
    assert (await client.closed()).code == 1009
    await other.send({"type": "ping"})
    await other.expect("pong")
    other.close()


@pytest.mark.gen_test
async def test_foreign_origin_is_refused(ws_url):
    with pytest.raises(HTTPClientError) as err:
        await WsClient.connect(ws_url, origin="https://evil.example")
    assert err.value.code == 403


@pytest.mark.gen_test
async def test_allowed_origins_setting(io_loop, make_settings):
    from server import make_app, open_services

    services = await open_services(make_settings(ALLOWED_ORIGINS="https://partner.example"))
    from tornado.httpserver import HTTPServer

    server = HTTPServer(make_app(services))
    from tests.servers import free_port

    port = free_port()
    server.listen(port, "127.0.0.1")
    try:
        client = await WsClient.connect(f"ws://127.0.0.1:{port}/ws", origin="https://partner.example")
        client.close()
        with pytest.raises(HTTPClientError):
            await WsClient.connect(f"ws://127.0.0.1:{port}/ws", origin="https://other.example")
    finally:
        server.stop()
        await services.close()


@pytest.mark.gen_test(timeout=15)
async def test_token_expiry_closes_with_4010(ws_url, services):
    short = services.tokens.issue("u1", role="attendee", ttl=1)
    client = await WsClient.connect(ws_url, short)
    await client.expect("token_expired", timeout=5)
    assert (await client.closed()).code == 4010


@pytest.mark.gen_test
async def test_refresh_extends_the_session(ws_url, services):
    client = await WsClient.connect(ws_url, services.tokens.issue("u1", role="attendee", ttl=60))
    fresh = services.tokens.issue("u1", role="attendee", ttl=3600)
    await client.send({"type": "refresh", "token": fresh})
    refreshed = await client.expect("refreshed")
    assert refreshed["user"] == "u1" and refreshed["exp"] == int(services.tokens.verify(fresh).exp)
    await client.send({"type": "refresh", "token": services.tokens.issue("u9", role="attendee")})
    assert (await client.expect("error"))["code"] == "token_invalid"
    client.close()


@pytest.mark.gen_test
async def test_auth_timeout(ws_url, monkeypatch):
    monkeypatch.setattr("realtime.engine.session.AUTH_TIMEOUT", 0.2)
    client = await WsClient.connect(ws_url)
    assert (await client.closed()).code == 4001


@pytest.mark.gen_test
async def test_flooding_is_rate_limited(ws_url, token):
    client = await WsClient.connect(ws_url, token())
    for _ in range(100):
        await client.send({"type": "ping"})
    codes = []
    try:
        while len(codes) < 100:
            msg = await client.recv(5)
            codes.append(msg.get("code") or msg["type"])
    except (Closed, WebSocketClosedError):
        pass
    assert "rate_limited" in codes and codes.count("pong") >= 50
    client.close()


@pytest.mark.gen_test
async def test_kick_ends_every_connection_of_a_user(ws_url, token, services):
    a = await WsClient.connect(ws_url, token("bad"))
    b = await WsClient.connect(ws_url, token("bad"))
    c = await WsClient.connect(ws_url, token("good"))
    await services.hub.kick("*", "bad", 4003, "banned")
    assert (await a.closed()).code == 4003
    assert (await b.closed()).code == 4003
    await c.send({"type": "ping"})
    await c.expect("pong")
    c.close()


@pytest.mark.gen_test
async def test_client_publish_of_typing_in_a_room(ws_url, services):
    a = await WsClient.connect(ws_url, services.tokens.issue("a", role="attendee", webinar="w1", name="A"))
    b = await WsClient.connect(ws_url, services.tokens.issue("b", role="attendee", webinar="w1", name="B"))
    await a.subscribe("room:w1")
    await b.subscribe("room:w1")
    await a.send({"type": "publish", "channel": "room:w1", "event": "typing", "data": {"on": True}})
    msg = await b.expect("typing")
    assert msg["data"]["from"] == "a" and "seq" not in msg
    await a.send({"type": "publish", "channel": "room:w1", "event": "announcement", "data": {}})
    assert (await a.expect("error"))["code"] == "forbidden"
    a.close()
    b.close()


@pytest.mark.gen_test(timeout=60)
async def test_slow_reader_is_bounded_then_disconnected(ws_url, token, services):
    """A client that stops reading: ephemeral messages are dropped first, memory stays within
    WS_OUTBOX_BYTES, and a durable message that does not fit closes it with 4008."""
    client = await WsClient.connect(ws_url, token("slow"), max_message_size=64 << 20)
    await client.subscribe("user:slow")
    conn = next(c for c in services.hub.connections if c.user_id == "slow")
    # Small socket buffers on both sides, so that the outbox, not the kernel, holds the backlog.
    client.conn.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.transport.ws_connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peak = await overrun(services.hub, conn, "user:slow", "x" * 60_000)
    assert peak <= services.settings.ws_outbox_bytes
    client.close()


@pytest.mark.gen_test
async def test_an_open_socket_keeps_nothing_of_its_handshake(ws_url, token, services):
    """Issue 14's memory per idle connection: once open, a socket holds no HTTP/1.1 connection
    objects nor headers, no empty deques, and a handler whose attributes share their keys."""
    client = await WsClient.connect(ws_url, token())
    await client.subscribe("user:u1")
    [session] = [s for s in services.hub.connections if s.user_id == "u1"]
    handler = session.transport
    assert handler.request.connection is None and handler.request.server_connection is None
    assert len(handler.request.headers) == 0
    stream = handler.ws_connection.stream
    assert not isinstance(stream._write_futures, collections.deque)
    assert not isinstance(stream._write_buffer._buffers, collections.deque)
    assert sys.getsizeof(handler.__dict__) < 400  # a 30th attribute makes it 1,584 bytes
    # the handshake's task has ended; the socket's frames are read in a task of its own
    [reader] = [t for t in READERS if t.get_coro().cr_frame.f_locals["self"] is handler.ws_connection]
    await services.hub.publish("user:u1", "notification", {"title": "still delivered"})
    assert (await client.messages("user:u1", 1))[0]["data"] == {"title": "still delivered"}
    await client.send({"type": "ping"})
    await client.expect("pong")
    reader.cancel()  # as a cancelled handshake task was: the socket is aborted, the session ends
    await client.closed()  # the loop's ``finally`` ended the session before the socket closed
    assert session not in services.hub.connections


@pytest.mark.gen_test(timeout=60)
async def test_a_connection_that_ends_leaves_no_reference_cycle(ws_url, token, services):
    # A socket, its session and its outbox are freed when the connection ends, not by a full
    # collection of the garbage collector (the longest pause of the loop, issue 14): a clean close,
    # and a peer's reset in the middle of a subscription, which Tornado keeps with its traceback.
    hub = services.hub
    clean = await WsClient.connect(ws_url, token("u1"))
    await clean.subscribe("user:u1")
    reset = await WsClient.connect(ws_url, token("u2"))
    await reset.subscribe("user:u2")
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        clean.close()
        sock = reset.conn.stream.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await hub.publish("user:u2", "notification", {"n": 1})
        sock.close()  # an RST: the server's next read fails with ECONNRESET
        while sum(hub.connection_counts().values()) or hub.leaving:  # noqa: ASYNC110 - no event
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # the closing callbacks' last turn
        gc.collect()
        cycles = [o for o in gc.garbage if isinstance(o, RealtimeSocket | Session | Outbox)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert cycles == []
