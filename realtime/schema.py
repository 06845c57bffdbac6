"""Request bodies, written once: the strict pydantic base, the field types every domain shares, and
the one adapter from a ``ValidationError`` to the product's ``Refused``.

A model here is both the server's validation and the OpenAPI document's schema (handlers/openapi.py
reads ``model_json_schema()``), so a limit is stated in one place. Strict: no coercion (``"1"`` is not
an integer, ``"true"`` not a boolean), unknown fields are refused, and a string field that arrives as
an object (``{"$gt": ""}``) is refused, so no operator ever reaches MongoDB. The engine does not use
this module: it carries envelopes, not product bodies.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from zoneinfo import available_timezones

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from storage.errors import Kind, Refused, invalid

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")


class Body(BaseModel):
    """A request body (or RPC params): strict, closed, and read with :func:`read`."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Query(BaseModel):
    """Query-string parameters: every value arrives as a string, so integers are parsed from one
    (the only coercion anywhere); unknown parameters are ignored, as browsers and proxies add some."""

    model_config = ConfigDict(strict=True, extra="ignore")


class View(BaseModel):
    """A response shape, for the document: closed, so a test comparing real responses with the
    document notices a field added to a response and not to its view."""

    model_config = ConfigDict(extra="forbid")


def read(model: type[M], data: Any) -> M:
    """``data`` validated by ``model``, or ``Refused(INVALID, "invalid", "<field>: <message>")`` naming
    the first field that breaks its rules."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise refusal(exc) from None


def refusal(exc: ValidationError) -> Refused:
    """The one translation from pydantic's error list to the product's error: the first error, its
    location as a path (``options[1]``, ``keys.auth``), and a short human sentence."""
    error = exc.errors(include_url=False)[0]
    if not error["loc"]:  # a rule across fields names its field in the message
        return Refused(Kind.INVALID, "invalid", _message(error))
    return invalid(field_path(error["loc"]), _message(error))


def field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if part == "[key]":
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _message(error: Any) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    messages = {
        "missing": "is required",
        "extra_forbidden": "unknown field",
        "string_type": "must be a string",
        "int_type": "must be an integer",
        "int_parsing": "must be an integer",
        "int_from_float": "must be an integer",
        "bool_type": "must be true or false",
        "list_type": "must be a list",
        "dict_type": "must be an object",
        "model_type": "must be an object",
        "model_attributes_type": "must be an object",
    }
    if kind in messages:
        return messages[kind]
    if kind == "string_too_short":
        n = ctx["min_length"]
        return "must not be empty" if n == 1 else f"needs at least {n} characters"
    if kind == "string_too_long":
        return f"is longer than {ctx['max_length']} characters"
    if kind == "string_pattern_mismatch":
        return "is not a valid id" if ctx.get("pattern") == ID_PATTERN else "has an invalid format"
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return f"must be at most {ctx.get('le', ctx.get('lt'))}"
    if kind in ("too_short", "too_long"):
        n = ctx["min_length" if kind == "too_short" else "max_length"]
        return f"needs at {'least' if kind == 'too_short' else 'most'} {n} item{'' if n == 1 else 's'}"
    if kind == "literal_error":
        return f"must be {ctx['expected']}"
    if kind == "value_error":
        return str(ctx["error"])
    return str(error["msg"]).lower()


# The shared field types -------------------------------------------------------------------------


NOT_BLANK = r"[^\s\x1c-\x1f\x85]"
r"""A character ``str.strip()`` keeps (a search, not a match): the document's way to say "not only white
space" (ECMA's ``\s`` lacks the separators U+001C-U+001F and U+0085 that Python strips)."""


def trimmed(max_len: int, min_len: int = 1) -> StringConstraints:
    """For ``Annotated[str, trimmed(n)]``: trimmed, then ``min_len`` to ``max_len`` characters."""
    pattern = NOT_BLANK if min_len >= 1 else None  # the document cannot trim; it can ask for a character
    return StringConstraints(strip_whitespace=True, min_length=min_len, max_length=max_len, pattern=pattern)


def not_blank(value: str) -> str:
    """For a string kept as sent (not trimmed) that must hold more than white space; pair it with
    ``Field(pattern=NOT_BLANK)`` so that the document says so."""
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _email(value: str) -> str:
    """A deliverable-looking address by email-validator (a kept library: the RFC 5321/5322 syntax,
    IDNA domains, special-use names); no DNS lookup. ASCII only (no SMTPUTF8), lower-cased."""
    if not EMAIL.match(value):
        raise ValueError("is not an email address")
    try:
        checked = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"is not an email address ({exc})") from None
    return str(checked.ascii_email or checked.normalized).lower()


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


# The document says what email-validator refuses beyond the format: domains under a special-use name
# (``x@host.test``, ``x@localhost``), so a client (or schemathesis) sees the rule the server applies.
SPECIAL_USE_DOMAIN = "@(.*\\.)?(" + "|".join(_any_case(n) for n in SPECIAL_USE_DOMAIN_NAMES) + ")\\.?$"

Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=320),
    AfterValidator(_email),
    Field(json_schema_extra={"format": "email", "not": {"pattern": SPECIAL_USE_DOMAIN}}),
]
"""An email address, trimmed and lower-cased."""


def _instant(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    raw = value.strip()
    if len(raw) > 40:
        raise ValueError("is longer than 40 characters")
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise ValueError("needs a time zone offset, e.g. 2030-01-31T18:00:00+01:00")
    return parsed.astimezone(UTC)


Instant = Annotated[
    datetime,
    BeforeValidator(_instant),
    Field(description="ISO 8601 date-time with an offset, e.g. 2030-01-31T18:00:00+01:00"),
]
"""An ISO 8601 date-time with an explicit offset, returned in UTC."""


TIME_ZONES = sorted(available_timezones())
"""The IANA zones this installation knows: the server's list and the document's ``enum`` alike."""
_ZONES = frozenset(TIME_ZONES)


def _zone(value: str) -> str:
    if value not in _ZONES:
        raise ValueError("is not an IANA time zone such as Europe/Berlin")
    return value


TimeZone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_zone),
    Field(description="IANA time zone, e.g. Europe/Berlin", json_schema_extra={"enum": TIME_ZONES}),
]


# An http(s) URI (RFC 3986) with a host name: no user info, no IPv6 literal, a port up to 65535. One
# pattern for the server and the document alike, so what the document calls valid the server takes
# (the document's ``format: uri`` refuses IRIs like ``https://café.example`` as this does).
_PCT = "%[0-9A-Fa-f]{2}"
_PCHAR = f"(?:[A-Za-z0-9\\-._~!$&'()*+,;=:@]|{_PCT})"
_HOST = f"(?:[A-Za-z0-9\\-._~!$&'()*+,;=]|{_PCT})+"
_PORT = "(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
HTTP_URL_PATTERN = (
    f"^https?://{_HOST}{_PORT}(?:/{_PCHAR}*)*(?:\\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?$"
)
_HTTP_URL = re.compile(HTTP_URL_PATTERN)


def http_url(value: str) -> str:
    """``value`` when it is an absolute http(s) URI with a host (:data:`HTTP_URL_PATTERN`)."""
    if not _HTTP_URL.fullmatch(value):
        raise ValueError("must be an http(s) URL")
    return value


HttpUrl = Annotated[
    str,
    StringConstraints(min_length=1, max_length=2000),  # as sent: the pattern cannot trim
    AfterValidator(http_url),
    Field(json_schema_extra={"format": "uri", "pattern": HTTP_URL_PATTERN}),
]
"""An absolute http(s) URL with a host, at most 2,000 characters."""

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""A record id (from a path or params); anything else is refused before it reaches a query."""

IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]
"""A client-chosen id of one send (storage/idempotency.py); see :func:`idempotency_key`."""


def idempotency_key() -> Any:
    """The optional ``idempotency_key`` field of a send (chat, question, the publish API)."""
    return Field(
        None,
        description="1-200 characters the client chooses per message (a UUID, say): a retry with the "
        "same key within IDEMPOTENCY_WINDOW answers with the first send's result (the same id and seq) "
        "instead of sending again",
    )


ID: TypeAdapter[str] = TypeAdapter(Id)


def value_of(adapter: TypeAdapter[T], value: Any, field: str) -> T:
    """One value (a path segment, a header) read by ``adapter``, or ``invalid`` naming ``field``."""
    try:
        return adapter.validate_python(value, strict=True)
    except ValidationError as exc:
        raise invalid(field, _message(exc.errors(include_url=False)[0])) from None


def ident(value: Any, field: str = "id") -> str:
    """``value`` as an :data:`Id`, or ``invalid`` naming ``field``."""
    return value_of(ID, value, field)
