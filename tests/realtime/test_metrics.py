"""The metrics whose causes are outside the process: MongoDB failing and timing out (through a real
TCP proxy in front of the real MongoDB-wire server), Redis going away and coming back, a push
service accepting and refusing."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from pymongo.errors import NetworkTimeout, OperationFailure

from realtime import metrics
from realtime.engine.broker import BrokerUnavailable
from realtime.engine.broker_redis import RedisBroker
from storage import mongo
from tests.handlers.test_notifications import wait_until
from tests.pushservice import PushService
from tests.servers import RedisServer


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


class StallingProxy:
    """TCP in front of a real server; ``stall()`` stops passing the server's answers on (a network
    that hangs), so the client's socket timeout fires."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.stalled = asyncio.Event()
        self.pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        for src, dst, answers in ((reader, up_writer, False), (up_reader, writer, True)):
            task = asyncio.ensure_future(self._pipe(src, dst, answers))
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, answers: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await src.read(65536):
                if answers and self.stalled.is_set():
                    continue  # swallowed: the client waits for an answer that never comes
                dst.write(data)
                await dst.drain()
        dst.close()

    def stall(self) -> None:
        self.stalled.set()

    async def close(self) -> None:
        self.server.close()
        for task in list(self.pipes):
            task.cancel()
        await asyncio.gather(*self.pipes, return_exceptions=True)


@pytest.mark.gen_test(timeout=60)
async def test_database_errors_and_timeouts_are_counted(mongo_server, test_id):
    proxy = StallingProxy(mongo_server.port)
    port = await proxy.start()
    client = mongo.open_client(
        f"mongodb://127.0.0.1:{port}/?directConnection=true",
        socketTimeoutMS=300,
        event_listeners=[metrics.DatabaseListener()],
    )
    db = client[test_id]
    server_errors, timeouts = (
        sample("webinar_database_errors_total", kind="server"),
        sample("webinar_database_errors_total", kind="timeout"),
    )
    try:
        await db.command("ping")
        assert sample("webinar_database_errors_total", kind="server") == server_errors
        with pytest.raises(OperationFailure):
            await db.command("noSuchCommand")
        assert sample("webinar_database_errors_total", kind="server") == server_errors + 1
        proxy.stall()
        with pytest.raises(NetworkTimeout):
            await db.command("ping")
        assert sample("webinar_database_errors_total", kind="timeout") == timeouts + 1
    finally:
        await client.close()
        await proxy.close()


@pytest.mark.gen_test(timeout=60)
async def test_broker_outage_counts_errors_and_the_reconnect(test_id):
    server = RedisServer()
    server.start()
    broker = RedisBroker(server.url, f"{test_id}:")
    await broker.start(lambda channel, payload: None, lambda channels: None)
    reconnects = sample("webinar_broker_reconnects_total")
    listen, publish = (sample("webinar_broker_errors_total", operation=op) for op in ("listen", "publish"))
    try:
        assert broker.connected.is_set()
        server.stop()
        await wait_until(_async(lambda: not broker.connected.is_set()))
        with pytest.raises(BrokerUnavailable):
            await broker.publish("room:w1", b"|{}")
        assert sample("webinar_broker_errors_total", operation="publish") == publish + 1
        assert sample("webinar_broker_errors_total", operation="listen") > listen
        assert sample("webinar_broker_reconnects_total") == reconnects
        server.start()
        await asyncio.wait_for(broker.connected.wait(), 30)
        assert sample("webinar_broker_reconnects_total") == reconnects + 1
    finally:
        await broker.close()
        server.close()


def _async(predicate):
    async def check():
        return predicate()

    return check


@pytest.fixture
def services_env():
    return {"WORKER_POLL_INTERVAL": "0.05"}


@pytest.fixture
def push_service(io_loop):
    service = PushService()
    service.start()
    yield service
    service.stop()


@pytest.mark.gen_test(timeout=30)
async def test_push_sent_and_failed_are_counted(http_client, base_url, services, push_service):
    token = services.tokens.issue("ann", role="attendee")
    for name in ("ann-laptop", "ann-old-phone"):
        resp = await http_client.fetch(
            base_url + "/api/push/subscriptions",
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            body=json.dumps(push_service.browser(name).subscription),
        )
        assert resp.code == 201
    push_service.answer("ann-old-phone", 410)
    sent, gone = sample("webinar_push_sent_total"), sample("webinar_push_failed_total", reason="gone")
    await services.notifications.notifier.notify(["ann"], "general", "Hi", "", "/")
    await wait_until(_async(lambda: sample("webinar_push_failed_total", reason="gone") == gone + 1))
    assert sample("webinar_push_sent_total") == sent + 1
