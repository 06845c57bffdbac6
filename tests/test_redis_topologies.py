"""The server on a real Redis Cluster (sharded pub/sub, a slot moved under a live channel) and on a
real Sentinel service through a failover: two app processes each, durable messages through the HTTP
publish API."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import AsyncHTTPClient

from config import load_settings
from realtime.auth.tokens import TokenService
from realtime.engine.brokers import open_broker
from tests.redis_topologies import RedisClusterTopology, SentinelTopology, redis_cli
from tests.servers import TEST_JWT_KEYS, AppProcess, app_processes
from tests.wsclient import WsClient

API_KEY = "topology-key-0123456789abcdef0123456789abcdef"
SETTINGS = {"API_KEYS": f"crm:{API_KEY}", "PRESENCE_TTL": "2", "PRESENCE_INTERVAL": "0.2"}


@pytest.fixture
def tokens(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    return TokenService(load_settings({"JWT_KEYS": TEST_JWT_KEYS}, toml_path=empty))


@pytest.fixture
def redis_cluster():
    topology = RedisClusterTopology()
    try:
        topology.start()
        yield topology
    finally:
        topology.close()


@pytest.fixture
def replicated_cluster():
    topology = RedisClusterTopology(replicas=1)
    try:
        topology.start()
        yield topology
    finally:
        topology.close()


@pytest.fixture
def sentinel():
    topology = SentinelTopology()
    try:
        topology.start()
        yield topology
    finally:
        topology.close()


async def publish(app: AppProcess, channel: str, n: int) -> int:
    resp = await AsyncHTTPClient().fetch(
        f"{app.url}/api/channels/{channel}/messages",
        method="POST",
        body=json.dumps({"type": "notification", "data": {"n": n}}),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    assert resp.code == 202
    return json.loads(resp.body)["seq"]


async def presence_count(app: AppProcess, channel: str) -> int:
    resp = await AsyncHTTPClient().fetch(
        f"{app.url}/api/channels/{channel}/presence", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    return json.loads(resp.body)["count"]


async def ready(app: AppProcess) -> bool:
    resp = await AsyncHTTPClient().fetch(app.url + "/readyz", raise_error=False)
    return resp.code == 200


async def eventually(check, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def durable(client: WsClient, channel: str, n: int) -> list[int]:
    return [m["data"]["n"] for m in await client.messages(channel, n, timeout=60)]


@pytest.mark.gen_test(timeout=180)
async def test_the_cluster_delivers_across_two_processes_over_sharded_pubsub(
    redis_cluster, mongo_server, test_id, tmp_path, tokens
):
    with app_processes(mongo_server.url, test_id, tmp_path, REDIS_URL=redis_cluster.url, **SETTINGS) as (
        _,
        (a, b),
    ):
        users = [f"u{i}" for i in range(6)]  # their channels hash to slots on different masters
        clients = {}
        for user in users:
            clients[user] = await WsClient.connect(b.ws_url + "/ws", tokens.issue(user, role="attendee"))
            assert (await clients[user].subscribe(f"user:{user}"))["type"] == "subscribed"
        for n in range(5):
            for user in users:
                await publish(a, f"user:{user}", n)
        for user in users:
            assert await durable(clients[user], f"user:{user}", 5) == list(range(5))
        # Each channel is a shard channel on the master owning its slot, not a classic channel.
        shard = {
            n.port: redis_cli(n.port, "pubsub", "shardchannels", f"{test_id}:*").split()
            for n in redis_cluster.nodes
        }
        assert sorted(c for found in shard.values() for c in found) == sorted(
            [f"{test_id}:ch:user:{u}" for u in users] + [f"{test_id}:ch:$control"]
        )
        assert sum(1 for found in shard.values() if found) > 1
        # Presence (two hash-tagged keys per channel) agrees from both processes.
        room = []
        for app, user in ((a, "h1"), (b, "h2")):
            token = tokens.issue(user, role="attendee", webinar="w1", name=user)
            room.append(await WsClient.connect(app.ws_url + "/ws", token))
            await room[-1].subscribe("room:w1")
        assert await presence_count(a, "room:w1") == 2
        assert await presence_count(b, "room:w1") == 2
        for client in [*clients.values(), *room]:
            client.close()


@pytest.mark.gen_test(timeout=240)
async def test_a_sentinel_failover_mid_broadcast_loses_and_duplicates_no_durable_message(
    sentinel, mongo_server, test_id, tmp_path, tokens
):
    with app_processes(mongo_server.url, test_id, tmp_path, REDIS_URL=sentinel.url, **SETTINGS) as (
        _,
        (a, b),
    ):
        token = tokens.issue("u1", role="attendee")
        channel = "user:u1"
        staying = [await WsClient.connect(app.ws_url + "/ws", token) for app in (a, b)]
        leaving = await WsClient.connect(b.ws_url + "/ws", token)
        for client in (*staying, leaving):
            await client.subscribe(channel)
        for n in range(10):
            await publish(a, channel, n)
        seen = await durable(leaving, channel, 10)
        leaving.close()  # comes back after the failover with `since`

        sentinel.kill_primary()
        for n in range(10, 20):  # accepted and stored while there is no primary
            await publish(a, channel, n)
        await asyncio.to_thread(sentinel.wait_failover)
        await eventually(lambda: ready(a))
        await eventually(lambda: ready(b))
        for n in range(20, 30):  # through the new primary
            await publish(a, channel, n)

        back = await WsClient.connect(b.ws_url + "/ws", token)
        assert (await back.subscribe(channel, since=10))["type"] == "subscribed"
        assert seen + await durable(back, channel, 20) == list(range(30))
        for client in staying:
            assert await durable(client, channel, 30) == list(range(30))
        # No late duplicate either: the next durable message after the 30 is the 31st.
        await publish(a, channel, 30)
        for client in (*staying, back):
            assert await durable(client, channel, 1) == [30]
            client.close()


@pytest.mark.gen_test(timeout=120)
async def test_a_channel_whose_slot_moves_is_resubscribed_on_its_new_owner(redis_cluster, test_id):
    broker = open_broker(redis_cluster.url, f"{test_id}:")
    got: asyncio.Queue[bytes] = asyncio.Queue()
    recovered: asyncio.Queue[list[str]] = asyncio.Queue()
    await broker.start(lambda channel, payload: got.put_nowait(payload), recovered.put_nowait)
    try:
        await broker.subscribe("room:m")
        await broker.publish("room:m", b"before")
        assert await asyncio.wait_for(got.get(), 30) == b"before"
        key = f"{test_id}:ch:room:m"
        owner = redis_cluster.owner(key)
        target = next(n for n in redis_cluster.nodes if n is not owner)
        move_slot(redis_cluster, redis_cli(owner.port, "cluster", "keyslot", key).strip(), owner, target)
        # The old owner drops the shard channel (sunsubscribe); the broker follows the slot.
        assert await asyncio.wait_for(recovered.get(), 30) == ["room:m"]
        assert key in redis_cli(target.port, "pubsub", "shardchannels")
        await broker.publish("room:m", b"after")
        assert await asyncio.wait_for(got.get(), 30) == b"after"
    finally:
        await broker.close()


def move_slot(cluster: RedisClusterTopology, slot: str, source, target) -> None:
    """Give ``slot`` (holding no keys) from ``source`` to ``target``, as resharding does."""
    source_id = redis_cli(source.port, "cluster", "myid").strip()
    target_id = redis_cli(target.port, "cluster", "myid").strip()
    assert redis_cli(target.port, "cluster", "setslot", slot, "importing", source_id).strip() == "OK"
    assert redis_cli(source.port, "cluster", "setslot", slot, "migrating", target_id).strip() == "OK"
    for node in sorted(cluster.nodes, key=lambda n: n is not target):
        assert redis_cli(node.port, "cluster", "setslot", slot, "node", target_id).strip() == "OK"


@pytest.mark.gen_test(timeout=240)
async def test_a_cluster_master_killed_mid_broadcast_loses_and_duplicates_no_durable_message(
    replicated_cluster, mongo_server, test_id, tmp_path, tokens
):
    url = replicated_cluster.url
    with app_processes(mongo_server.url, test_id, tmp_path, REDIS_URL=url, **SETTINGS) as (_, (a, b)):
        channel = "user:u1"
        client = await WsClient.connect(b.ws_url + "/ws", tokens.issue("u1", role="attendee"))
        await client.subscribe(channel)
        for n in range(10):
            await publish(a, channel, n)
        assert await durable(client, channel, 10) == list(range(10))
        replicated_cluster.owner(f"{test_id}:ch:{channel}").kill()  # its replica takes the slots over
        for n in range(10, 20):
            await publish(a, channel, n)
        await asyncio.to_thread(replicated_cluster.wait_ok)
        await eventually(lambda: ready(a))
        await eventually(lambda: ready(b))
        for n in range(20, 30):
            await publish(a, channel, n)
        assert await durable(client, channel, 20) == list(range(10, 30))
        await publish(a, channel, 30)
        assert await durable(client, channel, 1) == [30]
        assert "redis cluster broker subscriptions lost" in b.output()  # it did rebuild, and recovered
        client.close()
