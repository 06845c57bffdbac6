"""Two real server processes sharing a real Redis and MongoDB-wire server."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import AsyncHTTPClient

from config import load_settings
from realtime.auth.tokens import TokenService
from tests.servers import TEST_JWT_KEYS, AppProcess, app_processes
from tests.wsclient import WsClient

API_KEY = "cluster-key-0123456789abcdef0123456789abcdef"


@pytest.fixture
def cluster(mongo_server, test_id, tmp_path):
    with app_processes(
        mongo_server.url,
        test_id,
        tmp_path,
        API_KEYS=f"crm:{API_KEY}",
        PRESENCE_TTL="2",
        PRESENCE_INTERVAL="0.2",
        LOG_LEVEL="info",
    ) as found:
        yield found


@pytest.fixture
def tokens(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    return TokenService(load_settings({"JWT_KEYS": TEST_JWT_KEYS}, toml_path=empty))


async def publish(app: AppProcess, channel: str, type_: str, data: dict) -> int:
    resp = await AsyncHTTPClient().fetch(
        f"{app.url}/api/channels/{channel}/messages",
        method="POST",
        body=json.dumps({"type": type_, "data": data}),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    assert resp.code == 202
    return json.loads(resp.body)["seq"]


async def presence_count(app: AppProcess, channel: str) -> int:
    resp = await AsyncHTTPClient().fetch(
        f"{app.url}/api/channels/{channel}/presence", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    return json.loads(resp.body)["count"]


async def eventually(check, timeout: float = 15.0, interval: float = 0.1):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


@pytest.mark.gen_test(timeout=60)
async def test_message_published_on_one_process_reaches_the_other(cluster, tokens):
    _, (a, b) = cluster
    client = await WsClient.connect(b.ws_url + "/ws", tokens.issue("u1", role="attendee"))
    await client.subscribe("user:u1")
    await publish(a, "user:u1", "notification", {"n": 1})
    msg = (await client.messages("user:u1", 1))[0]
    assert msg["data"] == {"n": 1} and msg["seq"] == 1
    client.close()


@pytest.mark.gen_test(timeout=60)
async def test_reconnect_to_the_other_process_recovers_without_loss_or_duplicate(cluster, tokens):
    _, (a, b) = cluster
    token = tokens.issue("u1", role="attendee")
    first = await WsClient.connect(a.ws_url + "/ws", token)
    await first.subscribe("user:u1")
    for n in range(3):
        await publish(a, "user:u1", "notification", {"n": n})
    got = await first.messages("user:u1", 3)
    first.close()
    for n in range(3, 6):
        await publish(a, "user:u1", "notification", {"n": n})
    second = await WsClient.connect(b.ws_url + "/ws", token)
    await second.subscribe("user:u1", since=got[-1]["seq"])
    got += await second.messages("user:u1", 3)
    await publish(a, "user:u1", "notification", {"n": 6})
    got += await second.messages("user:u1", 1)
    assert [m["data"]["n"] for m in got] == list(range(7))
    assert [m["seq"] for m in got] == list(range(1, 8))
    second.close()


@pytest.mark.gen_test(timeout=60)
async def test_presence_agrees_across_processes_and_a_killed_process_leaves_no_ghost(cluster, tokens):
    _, (a, b) = cluster
    clients = []
    for i, app in enumerate([a, a, b, b]):
        user = f"u{i % 3}"  # u0 on a and b: one person in two tabs on two processes
        token = tokens.issue(user, role="attendee", webinar="w1", name=user)
        client = await WsClient.connect(app.ws_url + "/ws", token)
        await client.subscribe("room:w1")
        clients.append(client)
    assert await presence_count(a, "room:w1") == 3
    assert await presence_count(b, "room:w1") == 3
    a.kill()  # u1 was only on a; u0 still has a tab on b
    await eventually(lambda: _equals(presence_count(b, "room:w1"), 2))
    for client in clients:
        client.close()


async def _equals(awaitable, expected) -> bool:
    return await awaitable == expected


@pytest.mark.gen_test(timeout=90)
async def test_redis_restart_mid_stream_loses_no_durable_message(cluster, tokens):
    redis, (a, b) = cluster
    client = await WsClient.connect(b.ws_url + "/ws", tokens.issue("u1", role="attendee"))
    await client.subscribe("user:u1")
    seqs = []
    for n in range(5):
        seqs.append(await publish(a, "user:u1", "notification", {"n": n}))
    redis.stop()
    for n in range(5, 10):  # accepted and stored while Redis is down
        seqs.append(await publish(a, "user:u1", "notification", {"n": n}))
    redis.start()
    await eventually(lambda: _ready(a))
    await eventually(lambda: _ready(b))
    for n in range(10, 15):
        seqs.append(await publish(a, "user:u1", "notification", {"n": n}))
    got = await client.messages("user:u1", 15, timeout=30)
    assert [m["data"]["n"] for m in got] == list(range(15))
    assert [m["seq"] for m in got] == seqs == list(range(1, 16))
    client.close()


async def _ready(app: AppProcess) -> bool:
    resp = await AsyncHTTPClient().fetch(app.url + "/readyz", raise_error=False)
    return resp.code == 200
