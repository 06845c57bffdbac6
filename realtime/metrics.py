"""The server's Prometheus metrics: every metric this process exports, and the one-line hooks the
code that causes them calls. Served by handlers/metrics.py; what to alert on: docs/alerts.md.

Everything lives in one registry per process (``REGISTRY``); with several processes on a host each
serves its own (docs/alerts.md, "Scraping"). The hot paths stay cheap: labelled children are bound
once here, the fan-out counts once per batch (never per delivery), and what is a count of live
objects (connections, subscriptions, channels) is read from the hubs when scraped, not kept up to
date on every change.

This module imports no other part of the product (a leaf: the engine, the jobs, the notifications
and the handlers all call it).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import math
import time
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from pymongo import monitoring

disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series: noise no alert uses
REGISTRY = CollectorRegistry()
for _standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_standard)

TRANSPORTS = ("ws", "sse")
FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
SLOW = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class LoopCounter(Collector):
    """A counter for the event loop's hot paths: a plain int and no lock (prometheus_client's
    Counter takes a lock on every ``inc``, about a microsecond). Only code on the loop's thread
    calls ``inc``; scrapes read it on that thread too."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.value = 0
        REGISTRY.register(self)

    def inc(self, n: int = 1) -> None:
        self.value += n

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.name, self.documentation)
        family.add_metric([], self.value)
        yield family


class LoopHistogram(Collector):
    """A histogram for the event loop's hot paths (see :class:`LoopCounter`): one ``bisect`` and
    two additions per observation. ``scale`` turns an observed value into the exported unit
    (observe milliseconds, export seconds: 0.001); ``buckets`` are in the exported unit."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], scale: float = 1.0) -> None:
        self.name = name
        self.documentation = documentation
        self.buckets = tuple(buckets)
        self.scale = scale
        self._bounds = [b / scale for b in buckets]
        self.counts = [0] * (len(buckets) + 1)  # the last: above every bucket (+Inf)
        self.sum = 0.0
        REGISTRY.register(self)

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self._bounds, value)] += 1
        self.sum += value

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation)
        cumulative = 0
        rows: list[tuple[str, float]] = []
        for bound, n in zip((*self.buckets, math.inf), self.counts, strict=True):
            cumulative += n
            rows.append(("+Inf" if bound == math.inf else repr(float(bound)), cumulative))
        family.add_metric([], rows, sum_value=self.sum * self.scale)
        yield family


# -- the event loop's pauses ----------------------------------------------------------------------

PAUSES = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
LOOP_LAG = LoopHistogram(
    "webinar_event_loop_lag_seconds",
    "How late the event loop ran a timer that asked to run every 0.1 s: the longest stretch of work "
    "(a callback, a garbage collection) that held every connection of this process back.",
    PAUSES,
)
GC_PAUSE = Histogram(
    "webinar_gc_pause_seconds",
    "Garbage collections of this process by generation (2 is a full collection), and how long each "
    "stopped the event loop.",
    ["generation"],
    buckets=PAUSES,
    registry=REGISTRY,
)
LONGEST = Gauge(
    "webinar_pause_longest_seconds",
    "The longest event-loop lag and garbage collection since the process started (for benchmarks; "
    "alert on the histograms).",
    ["kind"],
    registry=REGISTRY,
)


class PauseWatch:
    """Measures the event loop's pauses while started: a timer every ``interval`` records how late
    it woke (``LOOP_LAG``), and ``gc.callbacks`` time every collection (``GC_PAUSE``)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.longest_lag = 0.0
        self.longest_gc = 0.0
        self._task: asyncio.Task[None] | None = None
        self._gc_started = 0.0
        self._gc_children = [GC_PAUSE.labels(str(g)) for g in range(3)]
        self._lag_gauge, self._gc_gauge = LONGEST.labels("event_loop"), LONGEST.labels("gc")

    def start(self) -> None:
        if self._task is None:
            gc.callbacks.append(self._on_gc)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pause-watch")

    async def close(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        gc.callbacks.remove(self._on_gc)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(self.interval)
            lag = max(0.0, loop.time() - asked - self.interval)
            LOOP_LAG.observe(lag)
            if lag > self.longest_lag:
                self.longest_lag = lag
                self._lag_gauge.set(lag)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        """Called by the collector wherever the program is: never raises (an error here would be
        reported as unraisable and lose nothing but this one measurement)."""
        try:
            if phase == "start":
                self._gc_started = time.perf_counter()
                return
            seconds = time.perf_counter() - self._gc_started
            self._gc_children[info["generation"]].observe(seconds)
            if seconds > self.longest_gc:
                self.longest_gc = seconds
                self._gc_gauge.set(seconds)
        except Exception:  # noqa: BLE001, S110 - a measurement, e.g. at the recursion limit
            pass


# -- live delivery (realtime/engine) --------------------------------------------------------------

PUBLICATIONS = Counter(
    "webinar_publications", "Messages published through this process's hub.", ["kind"], registry=REGISTRY
)
PUBLISHED_DURABLE = PUBLICATIONS.labels("durable")
PUBLISHED_EPHEMERAL = PUBLICATIONS.labels("ephemeral")
DELIVERIES = LoopCounter(
    "webinar_deliveries",
    "Publications handed to a local subscriber's connection (one per message and subscriber).",
)
DROPPED = LoopCounter(
    "webinar_dropped", "Ephemeral messages dropped because a connection's outgoing buffer was full."
)
SLOW_CONSUMER_CLOSES = LoopCounter(
    "webinar_slow_consumer_closes",
    "Connections closed with 4008 because a durable message did not fit their outgoing buffer.",
)
FANOUT_SECONDS = LoopHistogram(
    "webinar_fanout_duration_seconds",
    "Time one fan-out takes to write a batch of a channel's messages to every local subscriber.",
    FAST,
)
DELIVERY_LATENCY = LoopHistogram(
    "webinar_delivery_latency_seconds",
    "From a message's publish time (its ts, the publishing process's clock) to the end of the "
    "fan-out that wrote it to this process's subscribers.",
    SLOW,
    scale=0.001,  # observed in milliseconds, like ts
)
BROKER_RECONNECTS = Counter(
    "webinar_broker_reconnects", "Times the Redis broker connection was re-established.", registry=REGISTRY
)
BROKER_ERRORS = Counter(
    "webinar_broker_errors",
    "Redis broker failures: the listener's connection lost or refused, or a publish refused.",
    ["operation"],
    registry=REGISTRY,
)
BROKER_LISTEN_ERRORS = BROKER_ERRORS.labels("listen")
BROKER_PUBLISH_ERRORS = BROKER_ERRORS.labels("publish")


def fanned_out(pubs: Sequence[Any], subscribers: int, seconds: float) -> None:
    """One fan-out of ``pubs`` (Publications, each with ``ts`` in epoch ms) to ``subscribers``."""
    DELIVERIES.value += len(pubs) * subscribers
    FANOUT_SECONDS.observe(seconds)
    now = time.time() * 1000.0
    for pub in pubs:
        DELIVERY_LATENCY.observe(max(0.0, now - pub.ts))


class LiveHub(Protocol):
    """What the live gauges read from a hub (realtime/engine/hub.py) when scraped."""

    def connection_counts(self) -> dict[str, int]: ...

    def subscription_count(self) -> int: ...

    def channel_count(self) -> int: ...


class LiveCollector(Collector):
    """Connections by transport, subscriptions and channels of every hub this process runs."""

    def __init__(self) -> None:
        self._hubs: weakref.WeakSet[Any] = weakref.WeakSet()

    def watch(self, hub: LiveHub) -> None:
        self._hubs.add(hub)

    def forget(self, hub: LiveHub) -> None:
        self._hubs.discard(hub)

    def collect(self) -> Iterable[Metric]:
        hubs: list[LiveHub] = list(self._hubs)
        connections = GaugeMetricFamily(
            "webinar_connections", "Open live connections by transport.", labels=["transport"]
        )
        totals = dict.fromkeys(TRANSPORTS, 0)
        for hub in hubs:
            for transport, n in hub.connection_counts().items():
                totals[transport] = totals.get(transport, 0) + n
        for transport, n in totals.items():
            connections.add_metric([transport], n)
        yield connections
        yield GaugeMetricFamily(
            "webinar_subscriptions",
            "Channel subscriptions of this process's connections.",
            value=sum(h.subscription_count() for h in hubs),
        )
        yield GaugeMetricFamily(
            "webinar_channels",
            "Channels with at least one subscriber on this process.",
            value=sum(h.channel_count() for h in hubs),
        )

    def describe(self) -> Iterable[Metric]:
        return self.collect()


LIVE = LiveCollector()
REGISTRY.register(LIVE)

# -- MongoDB (storage), through PyMongo's command monitoring -------------------------------------

DATABASE_ERRORS = Counter(
    "webinar_database_errors",
    "MongoDB commands that failed: timeout (client or server time limit), network, server (an error "
    "answer; some are expected, such as a duplicate key of an idempotent insert).",
    ["kind"],
    registry=REGISTRY,
)
_DB_TIMEOUT, _DB_NETWORK, _DB_SERVER = (DATABASE_ERRORS.labels(k) for k in ("timeout", "network", "server"))
DATABASE_HEARTBEAT_FAILURES = Counter(
    "webinar_database_heartbeat_failures",
    "Failed checks of a MongoDB server by the driver's monitor (the server is unreachable or slow).",
    registry=REGISTRY,
)
# Server error codes that mean a time limit: MaxTimeMSExpired, ExceededTimeLimit,
# NetworkInterfaceExceededTimeLimit.
TIMEOUT_CODES = frozenset({50, 89, 262})
NOT_AN_ERROR = frozenset({"CancelledError", "KeyboardInterrupt", "SystemExit"})


class DatabaseListener(monitoring.CommandListener, monitoring.ServerHeartbeatListener):
    """Counts failed commands and heartbeats; give it to the client (``event_listeners=[...]``)
    where it is created (server.py). Runs in the driver's code path: only counter increments."""

    def started(self, event: Any) -> None:
        return None

    def succeeded(self, event: Any) -> None:
        return None

    def failed(self, event: Any) -> None:
        if isinstance(event, monitoring.ServerHeartbeatFailedEvent):
            DATABASE_HEARTBEAT_FAILURES.inc()
            return
        failure = event.failure or {}
        errtype = failure.get("errtype")  # a client-side exception (pymongo.message._convert_exception)
        if errtype is not None:
            if errtype in NOT_AN_ERROR:
                return
            (_DB_TIMEOUT if "Timeout" in errtype else _DB_NETWORK).inc()
        elif failure.get("code") in TIMEOUT_CODES:
            _DB_TIMEOUT.inc()
        else:
            _DB_SERVER.inc()


# -- background jobs (realtime/jobs) --------------------------------------------------------------

JOB_QUEUE_DEPTH = Gauge(
    "webinar_job_queue_depth",
    "Jobs due now and not yet claimed (the whole queue, as read when scraped).",
    registry=REGISTRY,
)
JOB_OLDEST_AGE = Gauge(
    "webinar_job_oldest_age_seconds",
    "How long the longest-waiting due job has waited (0: none waiting).",
    registry=REGISTRY,
)
JOB_RUNS = Counter(
    "webinar_job_runs",
    "Job attempts run by this process by kind and outcome (done, retry: asked to run later, failed, "
    "lost: stopped because another process took over its lease).",
    ["kind", "outcome"],
    registry=REGISTRY,
)


def job_ran(kind: str, outcome: str) -> None:
    JOB_RUNS.labels(kind, outcome).inc()


def job_queue_sampled(depth: int, oldest_age: float) -> None:
    JOB_QUEUE_DEPTH.set(depth)
    JOB_OLDEST_AGE.set(oldest_age)


# -- notifications sent outside the browser -------------------------------------------------------

PUSH_SENT = Counter("webinar_push_sent", "Web Push messages a push service accepted.", registry=REGISTRY)
PUSH_FAILED = Counter(
    "webinar_push_failed",
    "Web Push messages not delivered: gone (subscription removed), retry (queued again), refused (dropped).",
    ["reason"],
    registry=REGISTRY,
)
_PUSH_GONE, _PUSH_RETRY, _PUSH_REFUSED = (PUSH_FAILED.labels(r) for r in ("gone", "retry", "refused"))


def push_results(sent: int, gone: int, retry: int, refused: int) -> None:
    """The outcome of one ``push.send`` job (realtime/notifications/webpush.py)."""
    PUSH_SENT.inc(sent)
    _PUSH_GONE.inc(gone)
    _PUSH_RETRY.inc(retry)
    _PUSH_REFUSED.inc(refused)


EMAIL_SENT = Counter("webinar_email_sent", "E-mails the SMTP server accepted.", registry=REGISTRY)
EMAIL_FAILED = Counter(
    "webinar_email_failed",
    "E-mails not sent: retry (a temporary failure, tried again), refused (given up).",
    ["reason"],
    registry=REGISTRY,
)
_EMAIL_RETRY, _EMAIL_REFUSED = EMAIL_FAILED.labels("retry"), EMAIL_FAILED.labels("refused")


def email_sent(n: int = 1) -> None:
    """Call once per message the SMTP server accepted (``n`` for a batch)."""
    EMAIL_SENT.inc(n)


def email_failed(*, retry: bool, n: int = 1) -> None:
    """Call once per message not sent: ``retry`` when it will be tried again (4xx, network),
    else it is given up (5xx, invalid address)."""
    (_EMAIL_RETRY if retry else _EMAIL_REFUSED).inc(n)


# -- HTTP (handlers) ------------------------------------------------------------------------------

HTTP_SECONDS = Histogram(
    "webinar_http_request_duration_seconds",
    "HTTP request duration by route template (never the raw path); /sse counts a stream's lifetime.",
    ["route", "method"],
    buckets=SLOW,
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "webinar_http_requests",
    "HTTP requests by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_done(route: str, method: str, status: int, seconds: float) -> None:
    """One finished HTTP request; ``route`` is a template (bounded), any other method is ``other``."""
    method = method if method in METHODS else "other"
    HTTP_SECONDS.labels(route, method).observe(seconds)
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
