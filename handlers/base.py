"""The base of every JSON handler: request ids, JSON errors, body parsing, one log line per request."""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any, TypeVar

import tornado.web

from handlers.headers import (
    CORS_ALLOW_HEADERS,
    CORS_EXPOSE_HEADERS,
    CORS_MAX_AGE,
    cors_origin,
)
from handlers.json_input import BadJson, decode
from realtime.schema import Query, read
from storage.errors import Kind, Refused, outage

Q = TypeVar("Q", bound=Query)

log = logging.getLogger("handlers")
access_log = logging.getLogger("access")

REASONS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


# The one mapping from the product's error kinds to HTTP (the live protocol sends the code alone).
STATUS: dict[Kind, int] = {
    Kind.MALFORMED: 400,
    Kind.INVALID: 422,
    Kind.UNAUTHORIZED: 401,
    Kind.FORBIDDEN: 403,
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,
    Kind.TOO_LARGE: 413,
    Kind.UNSUPPORTED: 415,
    Kind.RATE_LIMITED: 429,
    Kind.UNAVAILABLE: 503,
}


def allowed_methods(handler: type[tornado.web.RequestHandler]) -> list[str]:
    """The methods ``handler`` serves (the ones it defines), for a 405's ``Allow`` header."""
    base = tornado.web.RequestHandler
    return [m for m in base.SUPPORTED_METHODS if getattr(handler, m.lower()) is not getattr(base, m.lower())]


def request_id_of(handler: tornado.web.RequestHandler) -> str:
    rid = getattr(handler, "_request_id", None)
    if rid is None:
        given = handler.request.headers.get("X-Request-Id", "")
        ok = 0 < len(given) <= 64 and all(c.isalnum() or c in "-_." for c in given)
        rid = given if ok else secrets.token_hex(8)
        handler._request_id = rid  # type: ignore[attr-defined]
    return rid


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Application ``log_function``: one line per request; never the query string (tokens)."""
    status = handler.get_status()
    duration_ms = round(1000.0 * handler.request.request_time(), 1)
    level = logging.INFO if status < 500 else logging.ERROR
    rid = request_id_of(handler)
    access_log.log(
        level,
        "%s %s %s %.1fms rid=%s",
        handler.request.method,
        handler.request.path,
        status,
        duration_ms,
        rid,
        extra={
            "request_id": rid,
            "status": status,
            "method": handler.request.method,
            "path": handler.request.path,
            "duration_ms": duration_ms,
            "remote_ip": handler.request.remote_ip,
        },
    )


class JsonHandler(tornado.web.RequestHandler):
    """Base handler: every response is JSON, every error ``{"error": {"code", "message"}}``."""

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Request-Id", request_id_of(self))
        self._cors()

    def _cors(self) -> None:
        """CORS for origins in ``CORS_ORIGINS`` (the application setting ``cors_origins``): the allowed
        origin may read every answer, errors included; any other origin gets no CORS header at all."""
        allowed: tuple[str, ...] = self.application.settings.get("cors_origins", ())
        self.cors_allowed = cors_origin(self.request.headers.get("Origin"), allowed)
        if allowed:
            self.set_header("Vary", "Origin")
        if self.cors_allowed is not None:
            self.set_header("Access-Control-Allow-Origin", self.cors_allowed)
            self.set_header("Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS)

    def options(self, *args: str) -> None:
        """``Allow`` for anyone; a CORS preflight from an allowed origin also gets the methods, the
        request headers it may send and how long to cache that (``Access-Control-Max-Age``)."""
        methods = ", ".join(allowed_methods(type(self)))
        self.set_header("Allow", methods)
        preflight = "Access-Control-Request-Method" in self.request.headers
        if preflight and self.cors_allowed is not None:
            self.set_header("Access-Control-Allow-Methods", methods)
            self.set_header("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS)
            self.set_header("Access-Control-Max-Age", str(CORS_MAX_AGE))
        self.set_status(204)
        self.finish()

    def check_xsrf_cookie(self) -> None:
        # The API authenticates with bearer tokens, never cookies, so XSRF does not apply.
        return None

    def json_body(self) -> dict[str, Any]:
        ctype = self.request.headers.get("Content-Type", "")
        # Lenient on purpose: `curl -d` labels JSON as form data. Only multipart is certainly wrong.
        if ctype.lower().startswith("multipart/"):
            raise Refused(Kind.UNSUPPORTED, "unsupported_media_type", "send the body as application/json")
        if not self.request.body:
            return {}
        try:
            body = decode(self.request.body)
        except BadJson as exc:
            if exc.malformed:
                raise Refused(Kind.MALFORMED, "invalid_json", "the request body is not valid JSON") from None
            raise Refused(Kind.INVALID, "invalid", f"the request body: {exc.reason}") from None
        if not isinstance(body, dict):
            raise Refused(Kind.MALFORMED, "invalid_json", "the request body must be a JSON object")
        return body

    def query(self, model: type[Q]) -> Q:
        """The query string read by ``model`` (a parameter given twice: the last one counts)."""
        return read(model, {name: self.get_query_argument(name) for name in self.request.query_arguments})

    def send(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, separators=(",", ":"), default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if exc is not None and not isinstance(exc, Refused):
            exc = outage(exc) or exc  # MongoDB unreachable: 503 unavailable
        if isinstance(exc, Refused):
            self.set_status(STATUS[exc.kind])
            if "retry_after" in exc.extra:
                self.set_header("Retry-After", str(exc.extra["retry_after"]))
            error: dict[str, Any] = {"code": exc.code, "message": exc.message, **exc.extra}
        elif status_code >= 500:
            error = {
                "code": "internal_error",
                "message": f"internal error; quote request id {request_id_of(self)}",
            }
        else:
            message = self._reason
            if isinstance(exc, tornado.web.HTTPError) and exc.log_message:
                message = exc.log_message % exc.args if exc.args else exc.log_message
            error = {"code": REASONS.get(status_code, "error"), "message": message}
        if self.get_status() == 405:
            self.set_header("Allow", ", ".join(allowed_methods(type(self))))
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": error}, default=str))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, tornado.web.HTTPError | Refused):
            return  # expected errors are in the access log line already
        if outage(value) is not None:
            log.warning("database unreachable rid=%s: %s", request_id_of(self), type(value).__name__)
            return
        log.error(
            "unhandled error rid=%s %s %s",
            request_id_of(self),
            self.request.method,
            self.request.path,
            exc_info=(typ, value, tb),
            extra={"request_id": request_id_of(self)},
        )


class NotFoundHandler(JsonHandler):
    def prepare(self) -> None:
        raise Refused(Kind.NOT_FOUND, "not_found", f"no route for {self.request.path}")
