"""``/metrics``: scraped over HTTP and parsed with prometheus_client's own parser, checked against the
activity each test causes; not reachable by default; one port per process."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import gc
import json
import socket
import time

import pytest
import tornado.httpserver
from prometheus_client.parser import text_string_to_metric_families
from tornado.testing import bind_unused_port

from handlers.metrics import RouteTemplates, template_of
from server import listen_metrics, make_app
from storage.jobs import FAILED
from tests.slowreader import overrun
from tests.sseclient import EventStream, ticket_for
from tests.wsclient import WsClient, close_all


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(http_client, url: str):
    resp = await http_client.fetch(url + "/metrics")
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return parse(resp.body.decode())


@pytest.fixture
def metrics_port(services):
    """This test's separate metrics listener (``METRICS_PORT`` on a free port), process index 0."""
    sock, port = bind_unused_port()
    sock.close()
    svc = dataclasses.replace(services, settings=services.settings.replace(metrics_port=port))
    server = listen_metrics(svc)
    assert server is not None
    yield port
    server.stop()


async def failing(job):
    raise RuntimeError("this job always fails")


@pytest.mark.gen_test(timeout=60)
async def test_a_scrape_counts_what_happened(http_client, base_url, services, metrics_port):
    url = f"http://127.0.0.1:{metrics_port}"
    before = await scrape(http_client, url)
    # Live: two WebSockets and one SSE stream on one channel.
    token = services.tokens.issue("u1", role="attendee")
    sockets = [await WsClient.connect(base_url, token) for _ in range(2)]
    for ws in sockets:
        assert (await ws.subscribe("user:u1"))["type"] == "subscribed"
    stream = await EventStream().open(base_url, await ticket_for(http_client, base_url, token), ["user:u1"])
    await stream.event("subscribed")
    live = await scrape(http_client, url)
    assert value(live, "webinar_connections", transport="ws") == 2
    assert value(live, "webinar_connections", transport="sse") == 1
    assert value(live, "webinar_subscriptions") == 3
    assert value(live, "webinar_channels") == 1

    # Publications: 3 durable and 1 ephemeral, each delivered to all three.
    for i in range(3):
        await services.hub.publish("user:u1", "notification", {"n": i})
    await services.hub.publish("user:u1", "typing", {"on": True}, durable=False)
    for ws in sockets:
        await ws.messages("user:u1", 3)
        await ws.expect("typing")
    await stream.wait(5)  # subscribed + 4
    # A failing job (its only attempt), waiting in the queue two minutes before it runs.
    worker = services.notifications.worker
    await worker.close()  # this test runs the worker by hand
    worker.register("test.failing", failing)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=120)
    job_id = await services.notifications.jobs.enqueue("test.failing", {}, run_at=past, max_attempts=1)
    waiting = await scrape(http_client, url)
    assert value(waiting, "webinar_job_queue_depth") == 1
    assert value(waiting, "webinar_job_oldest_age_seconds") >= 120
    assert await worker.run_one()
    assert (await services.notifications.jobs.get(job_id))["status"] == FAILED
    # An HTTP request on a route with an id.
    resp = await http_client.fetch(base_url + "/api/webinars/w0123456789", raise_error=False)
    assert resp.code == 404

    after = await scrape(http_client, url)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("webinar_publications_total", kind="durable") == 3
    assert delta("webinar_publications_total", kind="ephemeral") == 1
    assert delta("webinar_deliveries_total") == 12
    assert delta("webinar_fanout_duration_seconds_count") >= 1
    assert delta("webinar_delivery_latency_seconds_count") == 4
    assert value(after, "webinar_job_queue_depth") == 0
    assert value(after, "webinar_job_oldest_age_seconds") == 0
    assert delta("webinar_job_runs_total", kind="test.failing", outcome="failed") == 1
    route = {"route": "/api/webinars/{}", "method": "GET"}
    assert delta("webinar_http_requests_total", **route, status="404") == 1
    assert delta("webinar_http_request_duration_seconds_count", **route) == 1
    assert not [key for key in after if "w0123456789" in str(key)]  # never the raw path

    await stream.close()
    await close_all(services, *sockets)
    gone = await scrape(http_client, url)
    assert value(gone, "webinar_connections", transport="ws") == 0
    assert value(gone, "webinar_connections", transport="sse") == 0
    assert value(gone, "webinar_subscriptions") == 0


async def serve_as_production(app):
    """``app`` behind an HTTPServer built as server.py builds it (``xheaders=True``)."""
    sock, port = bind_unused_port()
    server = tornado.httpserver.HTTPServer(app, xheaders=True)
    server.add_sockets([sock])
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.gen_test(timeout=30)
async def test_metrics_are_not_served_on_the_main_port_by_default(http_client, base_url, services):
    assert services.settings.metrics_port is None and services.settings.metrics_allow == ()
    resp = await http_client.fetch(base_url + "/metrics", raise_error=False)
    assert resp.code == 404
    assert json.loads(resp.body)["error"] == {"code": "not_found", "message": "no route for /metrics"}
    assert listen_metrics(services) is None


@pytest.mark.gen_test(timeout=30)
async def test_the_allow_list_trusts_the_socket_address_never_forwarded_headers(http_client, services):
    settings = services.settings.replace
    closed = make_app(dataclasses.replace(services, settings=settings(metrics_allow=_nets("10.0.0.0/8"))))
    server, url = await serve_as_production(closed)
    spoofed = {"X-Forwarded-For": "10.1.2.3", "X-Real-Ip": "10.1.2.3"}
    resp = await http_client.fetch(url + "/metrics", headers=spoofed, raise_error=False)
    assert resp.code == 404
    server.stop()

    opened = make_app(dataclasses.replace(services, settings=settings(metrics_allow=_nets("127.0.0.0/8"))))
    server, url = await serve_as_production(opened)
    samples = await scrape(http_client, url)
    assert ("webinar_connections", (("transport", "ws"),)) in samples
    server.stop()


def _nets(text: str):
    from config.settings import _networks

    return _networks(text)


def two_free_ports() -> int:
    """A port p such that p and p + 1 are both free now."""
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            p = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
            return int(p)
    raise AssertionError("no two consecutive free ports")


@pytest.mark.gen_test(timeout=30)
async def test_process_i_serves_its_metrics_on_metrics_port_plus_i(http_client, services):
    port = two_free_ports()
    svc = dataclasses.replace(services, settings=services.settings.replace(metrics_port=port))
    server = listen_metrics(svc, 1)
    assert server is not None
    await scrape(http_client, f"http://127.0.0.1:{port + 1}")
    resp = await http_client.fetch(f"http://127.0.0.1:{port + 1}/other", raise_error=False)
    assert resp.code == 404
    server.stop()


def test_route_labels_are_templates():
    assert template_of(r"/api/webinars/([A-Za-z0-9_-]{1,64})/chat") == "/api/webinars/{}/chat"
    assert template_of(r"/api/webinars/([a-z]+)/registrations\.csv") == "/api/webinars/{}/registrations.csv"
    assert template_of(r"/api/webinars/([a-z]+)/reports/attendance(\.csv)?") == (
        "/api/webinars/{}/reports/attendance{}"
    )
    assert template_of(r"/w/([a-z]+)/(live|end|cancel)") == "/w/{}/{}"


def test_one_handler_class_behind_several_routes_is_told_apart_by_path():
    class Page:
        def __init__(self, path: str) -> None:
            self.request = type("R", (), {"path": path})()

    templates = RouteTemplates([(r"/", Page), (r"/join/([a-z0-9]+)", Page)])
    assert templates.of(Page("/join/abc")) == "/join/{}"  # type: ignore[arg-type]
    assert templates.of(Page("/")) == "/"  # type: ignore[arg-type]


@pytest.mark.gen_test(timeout=60)
async def test_drops_and_the_slow_consumer_close_are_counted(http_client, base_url, services, metrics_port):
    url = f"http://127.0.0.1:{metrics_port}"
    before = await scrape(http_client, url)
    client = await WsClient.connect(base_url, services.tokens.issue("slow", role="attendee"))
    await client.subscribe("user:slow")
    conn = next(c for c in services.hub.connections if c.user_id == "slow")
    client.conn.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    conn.transport.ws_connection.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    await overrun(services.hub, conn, "user:slow", "x" * 60_000)
    after = await scrape(http_client, url)
    dropped = value(after, "webinar_dropped_total") - value(before, "webinar_dropped_total")
    assert dropped == conn.transport.outbox.dropped > 0
    closes = value(after, "webinar_slow_consumer_closes_total")
    assert closes - value(before, "webinar_slow_consumer_closes_total") == 1
    await close_all(services, client)


@pytest.mark.gen_test(timeout=30)
async def test_a_metrics_port_in_use_is_one_clear_error(services):
    sock, port = bind_unused_port()  # held open: the port is in use
    svc = dataclasses.replace(services, settings=services.settings.replace(metrics_port=port))
    with pytest.raises(RuntimeError, match=f"^METRICS_PORT: cannot listen on 127.0.0.1:{port}: "):
        listen_metrics(svc)
    sock.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_pause_of_the_event_loop_and_a_full_collection_are_measured(
    http_client, services, metrics_port
):
    """A callback that holds the loop for 0.3 s shows as a lag of at least that, and a full
    garbage collection is timed under generation 2."""
    url = f"http://127.0.0.1:{metrics_port}"
    before = await scrape(http_client, url)
    for _ in range(3):  # a tick of the watch before and after the pause
        await asyncio.sleep(services.pauses.interval)
    started = time.monotonic()
    while time.monotonic() - started < 0.3:  # the loop held: no await
        pass
    gc.collect()
    for _ in range(3):
        await asyncio.sleep(services.pauses.interval)
    after = await scrape(http_client, url)
    name = "webinar_event_loop_lag_seconds_count"
    lagged = value(after, name) - value(before, name)
    assert lagged >= 3
    slow = value(after, "webinar_event_loop_lag_seconds_bucket", le="0.25")
    total = value(after, "webinar_event_loop_lag_seconds_bucket", le="+Inf")
    assert total - slow >= 1, "the 0.3 s pause is not above the 0.25 s bucket"
    assert value(after, "webinar_pause_longest_seconds", kind="event_loop") >= 0.3
    full = value(after, "webinar_gc_pause_seconds_count", generation="2")
    assert full > value(before, "webinar_gc_pause_seconds_count", generation="2")
    assert value(after, "webinar_pause_longest_seconds", kind="gc") > 0
