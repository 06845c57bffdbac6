"""The product's one error: a refused request with a kind, a stable code and a human sentence.

Every layer raises :class:`Refused` (persistence for a missing or conflicting record, the domain for
a rule, authentication for a token, a handler for a malformed request). The ``kind`` says what went
wrong in transport-neutral terms; each transport maps it once: HTTP to a status
(``handlers/base.py``), the live protocol to an ``error``/``rpc_error`` message carrying ``code``.
The ``code`` is the stable machine-readable word clients branch on (``token_expired``,
``email_taken``, ``banned``...); ``message`` is for people.

It lives at the bottom of the import graph (storage) because persistence raises it too.
"""

from __future__ import annotations

import enum
from typing import Any

from pymongo.errors import ConnectionFailure, PyMongoError


class Kind(enum.Enum):
    MALFORMED = "malformed"  # the request cannot be read (not JSON, not an object): HTTP 400
    INVALID = "invalid"  # a field breaks its schema or rules: HTTP 422
    UNAUTHORIZED = "unauthorized"  # no caller, or a refused token: HTTP 401
    FORBIDDEN = "forbidden"  # the caller may not do this: HTTP 403
    NOT_FOUND = "not_found"  # HTTP 404
    CONFLICT = "conflict"  # the record's state forbids it now (already live, email taken): HTTP 409
    TOO_LARGE = "too_large"  # HTTP 413
    UNSUPPORTED = "unsupported"  # a media type the API does not read: HTTP 415
    RATE_LIMITED = "rate_limited"  # HTTP 429
    UNAVAILABLE = "unavailable"  # a backing service is down; retry later: HTTP 503


class Refused(Exception):
    """A refused request. ``extra`` holds additional JSON-safe fields clients may read (for
    example ``retry_after``); they are rendered beside ``code`` and ``message``."""

    def __init__(self, kind: Kind, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.extra = extra

    def __repr__(self) -> str:
        return f"Refused({self.kind.name}, {self.code!r}, {self.message!r})"


def invalid(field: str, message: str) -> Refused:
    return Refused(Kind.INVALID, "invalid", f"{field}: {message}")


def not_found(what: str) -> Refused:
    return Refused(Kind.NOT_FOUND, "not_found", f"no such {what}")


def forbidden(message: str = "only a host of this webinar may do that") -> Refused:
    return Refused(Kind.FORBIDDEN, "forbidden", message)


def conflict(code: str, message: str) -> Refused:
    return Refused(Kind.CONFLICT, code, message)


def unauthorized(code: str, message: str) -> Refused:
    return Refused(Kind.UNAUTHORIZED, code, message)


def outage(exc: BaseException) -> Refused | None:
    """``unavailable`` when ``exc`` is PyMongo saying MongoDB could not be reached in time (it waits
    at most ``MONGODB_TIMEOUT``: storage/mongo.py); None for any other error."""
    if isinstance(exc, ConnectionFailure) or (isinstance(exc, PyMongoError) and exc.timeout):
        return Refused(Kind.UNAVAILABLE, "unavailable", "the database is unreachable; retry later")
    return None
