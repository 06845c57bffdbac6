"""``GET /metrics``: this process's Prometheus metrics (realtime/metrics.py), and the route templates
the HTTP metrics are labelled with.

Not public by default. On the main port it answers only TCP peers in ``METRICS_ALLOW`` (the socket's
own address: ``X-Forwarded-For`` is never trusted for this), everyone else gets the same 404 as an
unknown path; empty (the default) means nobody. ``METRICS_PORT`` opens a separate listener serving
nothing but ``/metrics`` on ``METRICS_HOST`` (loopback by default), one port per process
(server.py, ``listen_metrics``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado.http1connection import HTTP1Connection
from tornado.httputil import HTTPServerRequest
from tornado.routing import URLSpec

from config.settings import Network
from handlers.base import JsonHandler
from realtime import metrics
from storage.errors import Kind, Refused

log = logging.getLogger("handlers.metrics")

Sampler = Callable[[], Awaitable[None]]
LogFunction = Callable[[tornado.web.RequestHandler], None]
SAMPLE_TIMEOUT = 2.0  # a scrape must answer even when the database does not


def peer_ip(request: HTTPServerRequest) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The TCP peer's address (not the ``X-Forwarded-For`` one ``request.remote_ip`` may hold)."""
    conn = request.connection
    sock = conn.stream.socket if isinstance(conn, HTTP1Connection) else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        address = ipaddress.ip_address(sock.getpeername()[0])
    except (OSError, ValueError):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class MetricsHandler(JsonHandler):
    def initialize(self, samplers: Sequence[Sampler], allow: tuple[Network, ...] | None = None) -> None:
        """``allow`` None: every peer (the separate listener); else only peers in these blocks."""
        self.samplers = samplers
        self.allow = allow

    async def get(self) -> None:
        if self.allow is not None:
            ip = peer_ip(self.request)
            if ip is None or not any(ip in net for net in self.allow):
                raise Refused(Kind.NOT_FOUND, "not_found", f"no route for {self.request.path}")
        for sample in self.samplers:
            try:
                await asyncio.wait_for(sample(), SAMPLE_TIMEOUT)
            except Exception:  # noqa: BLE001 - the other metrics are served regardless
                log.warning("a metrics sampler failed", exc_info=True)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(metrics.REGISTRY))


def template_of(pattern: str) -> str:
    """A route's pattern as a label: each capture group becomes ``{}``, escapes and anchors go
    (``/api/webinars/([A-Za-z0-9_-]{1,64})/chat`` is ``/api/webinars/{}/chat``)."""
    out: list[str] = []
    depth = 0
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if depth == 0:
                out.append(pattern[i + 1 : i + 2])
            i += 2
            continue
        if c == "(":
            if depth == 0:
                out.append("{}")
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0 and pattern[i + 1 : i + 2] in ("?", "*", "+"):
                i += 1
        elif depth == 0 and c not in "^$":
            out.append(c)
        i += 1
    return "".join(out)


class RouteTemplates:
    """Which route served a request, as its template; :meth:`log_function` times requests with it."""

    UNMATCHED = "unmatched"  # the default handler: never the raw path, which is unbounded

    def __init__(self, routes: Iterable[Any]) -> None:
        self._by_class: dict[type, list[tuple[re.Pattern[str], str]]] = {}
        for route in routes:
            if isinstance(route, URLSpec):
                pattern, handler = route.regex.pattern, route.target
            else:
                pattern, handler = route[0], route[1]
            entry = (re.compile(pattern), template_of(pattern))
            self._by_class.setdefault(handler, []).append(entry)

    def of(self, handler: tornado.web.RequestHandler) -> str:
        candidates = self._by_class.get(type(handler))
        if not candidates:
            return self.UNMATCHED
        if len(candidates) > 1:  # one class behind several routes (the pages)
            for regex, template in candidates:
                if regex.fullmatch(handler.request.path):
                    return template
        return candidates[0][1]

    def log_function(self, then: LogFunction) -> LogFunction:
        """An application's ``log_function``: count and time the request under its route's
        template, then log it with ``then`` (handlers/base.py ``log_request``)."""

        def log(handler: tornado.web.RequestHandler) -> None:
            request = handler.request
            metrics.request_done(
                self.of(handler), request.method or "", handler.get_status(), request.request_time()
            )
            then(handler)

        return log
