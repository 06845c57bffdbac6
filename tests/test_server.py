"""The server as a user runs it: backend selection, health, readiness, shutdown."""

import json
import urllib.error
import urllib.request

import pytest

from realtime.engine.broker_memory import MemoryBroker
from realtime.engine.broker_redis import RedisBroker
from server import make_broker
from tests.servers import TEST_JWT_KEYS, AppProcess


@pytest.mark.gen_test
async def test_backend_is_chosen_by_url(make_settings):
    memory = make_broker(make_settings())
    redis = make_broker(make_settings(redis=True))
    assert isinstance(memory, MemoryBroker)
    assert isinstance(redis, RedisBroker)
    await memory.close()
    await redis.close()


@pytest.mark.gen_test
async def test_health_and_json_errors(http_client, base_url):
    resp = await http_client.fetch(base_url + "/healthz")
    assert json.loads(resp.body) == {"status": "ok"}
    assert resp.headers["X-Request-Id"]
    resp = await http_client.fetch(base_url + "/readyz")
    body = json.loads(resp.body)
    assert body["status"] == "ready" and body["checks"] == {"mongodb": True, "broker": True}
    resp = await http_client.fetch(base_url + "/no/such/route", raise_error=False)
    assert resp.code == 404
    assert json.loads(resp.body)["error"]["code"] == "not_found"
    assert resp.headers["Content-Type"].startswith("application/json")


def get_json(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_for(predicate, timeout=20.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_readyz_follows_redis(mongo_server, test_id):
    from tests.servers import RedisServer

    redis = RedisServer()
    redis.start()
    app = AppProcess(
        {
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": test_id,
            "REDIS_URL": redis.url,
            "REDIS_PREFIX": test_id + ":",
        }
    )
    try:
        app.start()
        assert get_json(app.url + "/readyz")[0] == 200
        redis.stop()
        status, body = wait_for(lambda: (r := get_json(app.url + "/readyz"))[0] == 503 and r)
        assert body["checks"]["broker"] is False and body["checks"]["mongodb"] is True
        redis.start()
        wait_for(lambda: get_json(app.url + "/readyz")[0] == 200)
        assert app.stop() == 0
    finally:
        app.stop()
        redis.close()


@pytest.mark.gen_test(timeout=120)
async def test_embedded_database_keeps_data_across_restart(tmp_path):
    """No MONGODB_URL: the server starts its own database under DATA_DIR; a restart keeps data."""
    env = {"DATA_DIR": str(tmp_path), "MONGODB_URL": "", "REDIS_URL": ""}
    app = AppProcess(env)
    app.start()
    try:
        assert get_json(app.url + "/readyz")[0] == 200
        assert app.stop() == 0
    finally:
        app.stop()
    assert (tmp_path / "mongo").is_dir()
    # write through the embedded server, restart, read back
    from storage.embedded import EmbeddedMongo
    from storage.mongo import open_client

    async def write_then_read(value):
        server = EmbeddedMongo(tmp_path / "mongo")
        await server.start()
        client = open_client(server.url)
        try:
            coll = client.db.keep
            if value is not None:
                await coll.insert_one({"_id": 1, "v": value})
            doc = await coll.find_one({"_id": 1})
        finally:
            await client.close()
            await server.stop()
        return doc

    assert await write_then_read("kept") == {"_id": 1, "v": "kept"}
    assert await write_then_read(None) == {"_id": 1, "v": "kept"}


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_closes_websockets_with_1001_and_exits_zero(mongo_server, test_id, tmp_path):
    from realtime.auth.tokens import TokenService
    from tests.wsclient import WsClient

    app = AppProcess(
        {
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": test_id,
            "REDIS_URL": "",
            "DATA_DIR": str(tmp_path),
        }
    )
    app.start()
    try:
        empty = tmp_path / "empty.toml"
        empty.write_text("")
        from config import load_settings

        tokens = TokenService(load_settings({"JWT_KEYS": TEST_JWT_KEYS}, toml_path=empty))
        client = await WsClient.connect(app.ws_url + "/ws", tokens.issue("u1", role="attendee"))
        await client.subscribe("user:u1")
        app.proc.send_signal(__import__("signal").SIGTERM)
        closed = await client.closed(timeout=10)
        assert closed.code == 1001
        assert app.proc.wait(10) == 0
        output = app.output()
        assert "ws open conn=" in output and "rid=" in output and "stopped" in output
        assert "eyJ" not in output  # no token in the logs
    finally:
        app.stop()


def test_a_taken_port_fails_the_start_instead_of_reaching_another_server(mongo_server, test_id, tmp_path):
    """AppProcess waits for its own READY line, not for the port to answer: a port another process
    holds (another test run's server, say) would answer too."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = AppProcess(
            {"MONGODB_URL": mongo_server.url, "MONGODB_DATABASE": test_id, "DATA_DIR": str(tmp_path)}
        )
        app.port, app.env["PORT"] = port, str(port)  # as if the free port it picked was taken since
        with pytest.raises(RuntimeError, match="already in use"):
            app.start()
        app.logfile.close()
