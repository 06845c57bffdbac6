"""MongoDB unreachable: a publish answers ``unavailable`` (HTTP 503 in the JSON error shape, the
``unavailable`` RPC error over the WebSocket) once ``MONGODB_TIMEOUT`` has passed, never a 500.

The server runs against its own SecantusDB, which the test stops."""

from __future__ import annotations

import json

import pytest

from tests.servers import MongoWireServer
from tests.wsclient import WsClient

API_KEY = "outage-key-0123456789abcdef0123456789abcdef"


@pytest.fixture
def own_mongo():
    server = MongoWireServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def services_env(own_mongo):
    return {"MONGODB_URL": own_mongo.url, "MONGODB_TIMEOUT": "1", "API_KEYS": f"crm:{API_KEY}"}


async def publish(http_client, base_url: str) -> tuple[int, dict]:
    resp = await http_client.fetch(
        f"{base_url}/api/channels/room:w1/messages",
        method="POST",
        body=json.dumps({"type": "note", "data": {"n": 1}}),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        raise_error=False,
        request_timeout=60,
    )
    return resp.code, json.loads(resp.body)


@pytest.mark.gen_test(timeout=90)
async def test_a_publish_while_mongodb_is_down_answers_unavailable(
    http_client, base_url, services, own_mongo
):
    assert await publish(http_client, base_url) == (202, {"channel": "room:w1", "seq": 1})
    live = await WsClient.connect(base_url, services.tokens.issue("u1", role="attendee", webinar="w1"))
    own_mongo.stop()

    code, body = await publish(http_client, base_url)
    assert code == 503
    assert body["error"]["code"] == "unavailable"

    reply = await live.rpc("chat.send", webinar_id="w1", text="anyone there?")
    assert reply["error"]["code"] == "unavailable"
    live.close()
