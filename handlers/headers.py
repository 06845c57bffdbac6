"""Headers every response gets or loses, and cross-origin REST calls (CORS) from ``CORS_ORIGINS``.

:class:`SecurityHeaders` is an output transform of the application, so it sees every response: the JSON
API, the pages, static files, the WebSocket handshake and SSE streams. CORS concerns the REST API only
(``JsonHandler``); WebSockets and SSE have their own origin check (``ALLOWED_ORIGINS``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import tornado.httputil
import tornado.web

HSTS = "max-age=31536000"
# What a cross-origin caller may send and read, and how long a browser may cache a preflight answer.
CORS_ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-Id"
CORS_EXPOSE_HEADERS = "Retry-After, X-Request-Id"
CORS_MAX_AGE = 600


class SecurityHeaders(tornado.web.OutputTransform):
    """No software name or version in ``Server``; HSTS on every response to an HTTPS request (served
    with ``TLS_CERT``, or through a trusted proxy whose ``X-Forwarded-Proto`` says https)."""

    def __init__(self, request: tornado.httputil.HTTPServerRequest) -> None:
        self.https = request.protocol == "https"

    def transform_first_chunk(
        self, status_code: int, headers: tornado.httputil.HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, tornado.httputil.HTTPHeaders, bytes]:
        if "Server" in headers:
            del headers["Server"]
        if self.https:
            headers["Strict-Transport-Security"] = HSTS
        return status_code, headers, chunk


def _origin(text: str) -> str | None:
    """``scheme://host:port`` in lower case, or None for anything that is not an http(s) origin."""
    try:
        parts = urlsplit(text.strip().lower())
        port = parts.port
    except ValueError:  # a port outside 0-65535, a malformed IPv6 literal
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.hostname}:{port or (443 if parts.scheme == 'https' else 80)}"


def cors_origin(origin: str | None, allowed: tuple[str, ...]) -> str | None:
    """The ``Access-Control-Allow-Origin`` value for a request from ``origin``, or None: no CORS."""
    if not origin or not allowed:
        return None
    if "*" in allowed:
        return "*"
    want = _origin(origin)
    if want is None or want not in {_origin(o) for o in allowed}:
        return None
    return origin
