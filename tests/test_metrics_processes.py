"""Two real server processes on one host, each scraped on its own metrics port: neither hides the
other, and neither serves /metrics on its public port."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient

from config import load_settings
from realtime.auth.tokens import TokenService
from tests.servers import TEST_JWT_KEYS, AppProcess, app_processes, free_port
from tests.wsclient import WsClient, ws_url


@pytest.fixture
def processes(mongo_server, test_id, tmp_path):
    ports = [free_port(), free_port()]
    with app_processes(mongo_server.url, test_id, tmp_path, METRICS_PORT=lambda i: str(ports[i])) as (
        _,
        apps,
    ):
        yield apps


async def connections(app: AppProcess) -> float:
    resp = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{app.env['METRICS_PORT']}/metrics")
    for family in text_string_to_metric_families(resp.body.decode()):
        for s in family.samples:
            if s.name == "webinar_connections" and s.labels == {"transport": "ws"}:
                return s.value
    raise AssertionError("webinar_connections{transport=ws} not exported")


@pytest.mark.gen_test(timeout=90)
async def test_each_process_is_scraped_on_its_own_port(processes, tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    tokens = TokenService(load_settings({"JWT_KEYS": TEST_JWT_KEYS}, toml_path=empty))
    a, b = processes
    token = tokens.issue("u1", role="attendee")
    clients = [await WsClient.connect(ws_url(a.url), token)]
    clients += [await WsClient.connect(ws_url(b.url), token) for _ in range(2)]
    assert await connections(a) == 1
    assert await connections(b) == 2
    for app in processes:
        resp = await AsyncHTTPClient().fetch(app.url + "/metrics", raise_error=False)
        assert resp.code == 404  # the public port does not serve them (METRICS_ALLOW is empty)
    for client in clients:
        client.close()
