"""A request body over ``MAX_BODY_BYTES`` answered 413 in the JSON error shape.

Tornado's own limit (``HTTPServer(max_body_size=...)``) answers a bare ``400 Bad Request`` without a
body and drops the connection. :class:`BodyLimit` wraps the application and looks at each request
before its body is read:

- a declared ``Content-Length`` over the limit: with ``Expect: 100-continue`` (the client waits
  before sending the body) the 413 goes out at once; otherwise the body, up to :data:`DRAIN_FACTOR`
  times the limit, is read and dropped first, because most clients write the whole body before they
  read an answer and would see a reset instead of the 413. A still larger one is answered at once
  and the connection closed;
- a chunked body is counted as it arrives; past the limit the rest is dropped and the request is
  answered 413 at its end (Tornado's bare 400 past :data:`DRAIN_FACTOR` times the limit).

No handler runs for a refused request, so nothing buffers more than the limit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable

from tornado import httputil
from tornado.http1connection import HTTP1Connection

access_log = logging.getLogger("access")

DRAIN_FACTOR = 8


class BodyLimit(httputil.HTTPServerConnectionDelegate):
    def __init__(self, app: httputil.HTTPServerConnectionDelegate, limit: int) -> None:
        self.app = app
        self.limit = limit

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        inner = self.app.start_request(server_conn, request_conn)
        if not isinstance(request_conn, HTTP1Connection):
            return inner
        return _LimitedRequest(inner, request_conn, self.limit)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)


class _LimitedRequest(httputil.HTTPMessageDelegate):
    def __init__(self, inner: httputil.HTTPMessageDelegate, conn: HTTP1Connection, limit: int) -> None:
        self.inner = inner
        self.conn = conn
        self.limit = limit
        self.received = 0
        self.refused = False
        self.answered = False
        self.start_line: httputil.RequestStartLine | None = None

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.RequestStartLine)
        self.start_line = start_line
        declared = headers.get("Content-Length", "")
        drain = DRAIN_FACTOR * self.limit
        if declared.isdigit() and int(declared) > self.limit:
            self.refused = True
            self.conn.set_max_body_size(int(declared))  # read (and dropped), not Tornado's bare 400
            if headers.get("Expect", "").lower() == "100-continue" or int(declared) > drain:
                self._answer()  # then the connection closes instead of reading the body
            return None
        if "Transfer-Encoding" in headers:
            self.conn.set_max_body_size(drain)  # counted here, so that the answer is ours
        return self.inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self.refused:
            return None
        self.received += len(chunk)
        if self.received > self.limit:
            self.refused = True
            self.inner.on_connection_close()  # the handler never runs; let it drop what it holds
            return None
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        if self.refused:
            self._answer()
        else:
            self.inner.finish()

    def on_connection_close(self) -> None:
        if not self.refused:
            self.inner.on_connection_close()

    def _answer(self) -> None:
        if self.answered:
            return
        self.answered = True
        message = f"the request body is larger than {self.limit} bytes"
        body = json.dumps({"error": {"code": "payload_too_large", "message": message}}).encode()
        headers = httputil.HTTPHeaders(
            {
                "Content-Type": "application/json; charset=utf-8",
                "Content-Length": str(len(body)),
                "X-Content-Type-Options": "nosniff",
            }
        )
        self.conn.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 413, "Content Too Large"), headers, body
        )
        self.conn.finish()
        assert self.start_line is not None
        access_log.info(
            "%s %s 413 body over %d bytes", self.start_line.method, self.start_line.path, self.limit
        )
