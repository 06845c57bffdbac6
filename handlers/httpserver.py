"""The HTTP server in front of the app: who the client is, how long a client may take, and TLS.

The client's address and scheme are settled here, once per request, before any handler runs, so the
access log, the rate limits and the origin checks all see the same ``request.remote_ip`` and
``request.protocol``. Forwarding headers (``X-Forwarded-For``, ``X-Real-IP``, ``X-Forwarded-Proto``)
are honoured only when the connection comes from a network in ``TRUSTED_PROXIES``; from anyone else
they are ignored, so a client cannot choose its own address.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Awaitable, Iterable

import tornado.httpserver
import tornado.httputil
import tornado.web

from config import Settings
from handlers.body_limit import BodyLimit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The networks whose forwarding headers are believed. Empty: nobody's."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    def client(self, peer: str, headers: tornado.httputil.HTTPHeaders) -> str:
        """The client's address: ``peer`` unless it is a trusted proxy; then the right-most address of
        ``X-Forwarded-For`` that is not itself a trusted proxy (each proxy appends the address it saw),
        else ``X-Real-IP``. A malformed entry ends the walk at the last address that is known good."""
        if not self.trusts(peer):
            return peer
        client = peer
        chain = headers.get("X-Forwarded-For", "")
        if not chain:
            real = headers.get("X-Real-IP", "").strip()
            return real if _is_ip(real) else peer
        for hop in reversed([h.strip() for h in chain.split(",")]):
            if not _is_ip(hop):
                break
            client = hop
            if not self.trusts(hop):
                break
        return client

    def scheme(self, peer: str, headers: tornado.httputil.HTTPHeaders, own: str) -> str:
        """``X-Forwarded-Proto`` (its last entry, the one the nearest proxy set) from a trusted proxy."""
        if not self.trusts(peer):
            return own
        given = headers.get("X-Forwarded-Proto", headers.get("X-Scheme", "")).split(",")[-1].strip().lower()
        return given if given in ("http", "https") else own


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class _Forwarded(tornado.httputil.HTTPMessageDelegate):
    """Sets the request context's address and scheme from :class:`TrustedProxies` before the request is
    built, and restores them after it (the next request on a kept-alive connection starts afresh)."""

    def __init__(
        self,
        delegate: tornado.httputil.HTTPMessageDelegate,
        connection: tornado.httputil.HTTPConnection,
        proxies: TrustedProxies,
    ) -> None:
        self.delegate = delegate
        self.context = connection.context  # type: ignore[attr-defined]  # tornado's own _ProxyAdapter does this
        self.proxies = proxies
        self.peer: str = self.context.remote_ip
        self.own: str = self.context.protocol

    def headers_received(
        self,
        start_line: tornado.httputil.RequestStartLine | tornado.httputil.ResponseStartLine,
        headers: tornado.httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        self.context.remote_ip = self.proxies.client(self.peer, headers)
        self.context.protocol = self.proxies.scheme(self.peer, headers, self.own)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()
        self._restore()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()
        self._restore()

    def _restore(self) -> None:
        self.context.remote_ip, self.context.protocol = self.peer, self.own


class ForwardedApp(tornado.httputil.HTTPServerConnectionDelegate):
    """``app`` as the HTTP server's delegate, with each request's client from :class:`TrustedProxies`."""

    def __init__(self, app: tornado.httputil.HTTPServerConnectionDelegate, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    def start_request(
        self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
    ) -> tornado.httputil.HTTPMessageDelegate:
        return _Forwarded(self.app.start_request(server_conn, request_conn), request_conn, self.proxies)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context from ``TLS_CERT``/``TLS_KEY`` (TLS 1.2 and later), or None: plain HTTP."""
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


def make_http_server(app: tornado.web.Application, settings: Settings) -> tornado.httpserver.HTTPServer:
    """The server ``server.py`` listens with. A client that has not sent a request's headers within
    ``HTTP_IDLE_TIMEOUT`` seconds (on a new or a kept-alive connection), or its body within
    ``HTTP_BODY_TIMEOUT``, is disconnected; a body over ``MAX_BODY_BYTES`` is answered 413 (BodyLimit)."""
    return tornado.httpserver.HTTPServer(
        ForwardedApp(BodyLimit(app, settings.max_body_bytes), TrustedProxies(settings.trusted_proxies)),
        xheaders=False,  # forwarding headers are read by TrustedProxies, from trusted peers only
        max_body_size=settings.max_body_bytes,
        idle_connection_timeout=settings.http_idle_timeout,
        body_timeout=settings.http_body_timeout,
        ssl_options=tls_context(settings),
    )
