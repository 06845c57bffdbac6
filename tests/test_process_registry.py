"""Separately started server processes on one database: each records a heartbeat, and one that
cannot exchange live messages with another (in-process broker, or another Redis) says so loudly."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import urllib.request

import pytest

from realtime.process.registry import broker_identity
from storage.mongo import open_client
from tests.servers import AppProcess


def readyz(url: str) -> dict:
    with urllib.request.urlopen(url + "/readyz", timeout=5) as resp:
        return json.loads(resp.read())


async def until(predicate, timeout: float = 60.0):
    """Poll ``predicate`` (the processes offer no event for another's heartbeat) until it is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := predicate()):  # noqa: ASYNC110
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
    return value


def test_the_broker_identity_names_the_server_and_prefix_but_no_secret():
    assert broker_identity("", "wb:") == "memory"
    assert broker_identity("redis://:hunter2@cache:6380/2", "wb:") == "redis://cache:6380/2 prefix=wb:"
    assert broker_identity("redis://cache/0", "x:") == "redis://cache:6379/0 prefix=x:"


def env(mongo_server, test_id, **extra):
    return {
        "MONGODB_URL": mongo_server.url,
        "MONGODB_DATABASE": test_id,
        "REDIS_URL": "",
        "PROCESS_HEARTBEAT": "0.3",
        **extra,
    }


WARNING = "cannot exchange live messages with this one (memory)"


@pytest.mark.gen_test(timeout=180)
async def test_two_processes_on_the_in_process_broker_warn_about_each_other(mongo_server, test_id):
    first, second = AppProcess(env(mongo_server, test_id)), AppProcess(env(mongo_server, test_id))
    first.start()
    try:
        assert readyz(first.url)["warnings"] == []
        second.start()
        # the second sees the first at start-up; the first sees the second at its next heartbeat
        await until(lambda: WARNING in second.output())
        await until(lambda: WARNING in first.output())
        for app, other in ((first, second), (second, first)):
            body = readyz(app.url)
            assert body["status"] == "ready"  # a warning, not an outage
            assert len(body["warnings"]) == 1 and f"pid {other.proc.pid} " in body["warnings"][0]
        assert second.stop() == 0
        # the second removed its heartbeat on the way out: the first's warning goes
        await until(lambda: readyz(first.url)["warnings"] == [])
    finally:
        second.stop()
        first.stop()


@pytest.mark.gen_test(timeout=180)
async def test_processes_sharing_one_redis_do_not_warn(mongo_server, redis_server, test_id):
    shared = env(mongo_server, test_id, REDIS_URL=redis_server.url, REDIS_PREFIX=test_id + ":")
    apps = [AppProcess(shared), AppProcess(shared)]
    client = open_client(mongo_server.url)
    try:
        apps[0].start()
        apps[1].start()
        docs = client[test_id].processes

        async def both_beat_after(moment: dt.datetime | None) -> dt.datetime:
            seen = {} if moment is None else {"seen": {"$gt": moment}}
            while await docs.count_documents(seen) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            return dt.datetime.now(dt.UTC)

        # a beat writes, then compares: once both have beaten after both were registered, and again
        # after that (so those comparisons are over), each has compared itself with the other
        registered = await asyncio.wait_for(both_beat_after(None), 60)
        compared = await asyncio.wait_for(both_beat_after(registered), 60)
        await asyncio.wait_for(both_beat_after(compared), 60)
        assert [readyz(app.url)["warnings"] for app in apps] == [[], []]
        broker = f"redis://127.0.0.1:{redis_server.port}/0 prefix={test_id}:"
        assert await docs.count_documents({"broker": broker}) == 2
        assert all(WARNING not in app.output() for app in apps)
    finally:
        for app in apps:
            app.stop()
        await client.close()
