"""Checking untrusted request bodies before anything reaches a query.

Each reader takes the body, a field name and its rules and returns a value of exactly the stated type,
or raises ``Refused(Kind.INVALID, "invalid", "<field>: ...")``. A string field that arrives as an object
(``{"$gt": ""}``) is refused here, so no operator ever reaches MongoDB. A small hand-written module
rather than a library: the rules are few and the error shape is ours.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from storage.errors import invalid

_MISSING = object()


def _given(body: dict[str, Any], field: str, required: bool) -> Any:
    """The field's value; ``_MISSING`` when it is absent or null and optional; 400 when required."""
    value = body.get(field)
    if value is None:
        if required:
            raise invalid(field, "is required")
        return _MISSING
    return value


EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")


def known_fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(unknown[0], "unknown field")


def text(
    body: dict[str, Any],
    field: str,
    *,
    max_len: int,
    min_len: int = 1,
    required: bool = True,
    default: str | None = None,
) -> Any:
    value = _given(body, field, required)
    if value is _MISSING:
        return default
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    value = value.strip()
    if len(value) < min_len:
        raise invalid(field, "must not be empty" if min_len == 1 else f"needs at least {min_len} characters")
    if len(value) > max_len:
        raise invalid(field, f"is longer than {max_len} characters")
    return value


def password(body: dict[str, Any], field: str = "password") -> str:
    value = body.get(field)
    if not isinstance(value, str):
        raise invalid(field, "must be a string")
    if not 8 <= len(value) <= 200:
        raise invalid(field, "must be 8 to 200 characters")
    return value


def email(body: dict[str, Any], field: str = "email", *, required: bool = True) -> Any:
    value = text(body, field, max_len=320, required=required)
    if value is None:
        return None
    if not EMAIL.match(value):
        raise invalid(field, "is not an email address")
    return value.lower()


def integer(
    body: dict[str, Any], field: str, *, lo: int, hi: int, required: bool = True, default: int | None = None
) -> Any:
    value = _given(body, field, required)
    if value is _MISSING:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, "must be an integer")
    if not lo <= value <= hi:
        raise invalid(field, f"must be between {lo} and {hi}")
    return value


def boolean(body: dict[str, Any], field: str, *, default: bool | None = False) -> Any:
    value = _given(body, field, False)
    if value is _MISSING:
        return default
    if not isinstance(value, bool):
        raise invalid(field, "must be true or false")
    return value


def choice(
    body: dict[str, Any],
    field: str,
    options: tuple[str, ...],
    *,
    default: str | None = None,
    required: bool = True,
) -> Any:
    value = _given(body, field, default is None and required)
    if value is _MISSING:
        return default
    if not isinstance(value, str) or value not in options:
        raise invalid(field, f"must be one of {', '.join(options)}")
    return value


def when(body: dict[str, Any], field: str, *, required: bool = True) -> Any:
    """An ISO 8601 date-time with an explicit offset, returned in UTC."""
    raw = text(body, field, max_len=40, required=required)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(field, "is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise invalid(field, "needs a time zone offset, e.g. 2030-01-31T18:00:00+01:00")
    return value.astimezone(UTC)


def timezone(body: dict[str, Any], field: str = "timezone", *, required: bool = True) -> Any:
    value = text(body, field, max_len=64, required=required)
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid(field, "is not an IANA time zone such as Europe/Berlin") from None
    return value


def url(body: dict[str, Any], field: str, *, required: bool = False) -> Any:
    value = text(body, field, max_len=2000, required=required, min_len=0)
    if not value:
        return "" if value == "" else None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid(field, "must be an http(s) URL")
    return value


def text_list(
    body: dict[str, Any],
    field: str,
    *,
    max_items: int,
    max_len: int,
    min_items: int = 0,
    required: bool = False,
) -> Any:
    value = _given(body, field, required)
    if value is _MISSING:
        return None
    if not isinstance(value, list):
        raise invalid(field, "must be a list of strings")
    if not min_items <= len(value) <= max_items:
        raise invalid(field, f"needs {min_items} to {max_items} items")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or len(item) > max_len:
            raise invalid(f"{field}[{i}]", f"must be a non-empty string of at most {max_len} characters")
        out.append(item.strip())
    return out


def ident(value: Any, field: str = "id") -> str:
    """An id from a path or params; anything else is refused before it reaches a query."""
    if not isinstance(value, str) or not ID.match(value):
        raise invalid(field, "is not a valid id")
    return value


def object_of(value: Any, field: str = "params") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(field, "must be an object")
    return value
