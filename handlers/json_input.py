"""JSON from clients (REST bodies, WebSocket frames), decoded once with the limits every value the
server may keep or pass on must meet, so no later layer meets a value it cannot handle:

- nesting at most :data:`MAX_DEPTH` objects and arrays deep (the parser's recursion, BSON's nesting
  limit and every encoder on the way out stay far away);
- integers within the signed 64-bit range (BSON has no larger integer);
- no ``NaN`` or ``Infinity``, which Python's parser accepts but JSON does not have, and no number
  that only fits as an infinite float (``1e999``);
- no string (or key) holding a lone UTF-16 surrogate (``"\\ud800"``), which has no UTF-8 form, so
  neither BSON nor the UTF-8 frames to other clients could carry it.

An integral number written with a fraction or exponent (``2.0``, ``1e3``) is that integer.

A text that breaks one of these is refused with :class:`BadJson`; ``malformed`` tells a text that is
not JSON at all from one beyond a limit.
"""

from __future__ import annotations

import gc
import json
import math
import re
from typing import Any

MAX_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


JSON_VALUE = "JsonValue"
JSON_VALUE_MARK = "x-json-value"  # on a field's schema: the document refers it to JsonValue
JSON_VALUE_SCHEMA = {
    "description": f"any JSON value: at most {MAX_DEPTH} levels deep, integers within 64 bits",
    "anyOf": [
        {"type": "null"},
        {"type": "boolean"},
        {"type": "string"},
        {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
        {"type": "number", "not": {"type": "integer"}},
        {"type": "array", "items": {"$ref": f"#/components/schemas/{JSON_VALUE}"}},
        {"type": "object", "additionalProperties": {"$ref": f"#/components/schemas/{JSON_VALUE}"}},
    ],
}
"""The values :func:`decode` takes, for the document (``#/components/schemas/JsonValue``); the depth
limit is in words, as a schema cannot count."""


class BadJson(ValueError):
    """Why a client's text is refused; ``malformed`` when it is not JSON, else it is beyond a limit."""

    def __init__(self, reason: str, malformed: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.malformed = malformed


def _int(text: str) -> int:
    # the length first: int() of thousands of digits is slow, and refused past 4,300
    value = int(text) if len(text) <= 20 else INT64_MAX + 1
    if not INT64_MIN <= value <= INT64_MAX:
        raise BadJson("an integer is outside the signed 64-bit range", malformed=False)
    return value


def _float(text: str) -> float | int:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson("a number is too large", malformed=False)
    if value.is_integer() and INT64_MIN <= value <= INT64_MAX:
        return int(value)  # JSON has one kind of number: 2.0 is the integer 2 (as JSON Schema reads it)
    return value


def _constant(name: str) -> Any:
    raise BadJson(f"{name} is not JSON", malformed=True)


# Only an escape can put a surrogate into a decoded string (UTF-8 text cannot hold one).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

_decoder = json.JSONDecoder(parse_int=_int, parse_float=_float, parse_constant=_constant)


def decode(text: str | bytes) -> Any:
    """``text`` as a JSON value within the limits above, or :class:`BadJson`."""
    too_deep = BadJson(f"nested more than {MAX_DEPTH} levels deep", malformed=False)
    # No garbage collection while the parser recurses: hostile input takes it to the recursion
    # limit, where a collection's callbacks (the pause metrics) could not run and would fail.
    collecting = gc.isenabled()
    gc.disable()
    try:
        text = text.decode("utf-8") if isinstance(text, bytes) else text
        value = _decoder.decode(text)
    except BadJson:
        raise
    except RecursionError:
        raise too_deep from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadJson("not valid JSON", malformed=True) from None
    finally:
        if collecting:
            gc.enable()
    if _too_deep(value):
        raise too_deep
    if _SURROGATE_ESCAPE.search(text) and _holds_surrogate(value):
        raise BadJson("a string holds a lone UTF-16 surrogate", malformed=False)
    return value


def _containers(value: Any) -> Any:
    """Every value inside ``value`` with its depth (1 for ``value``), in a loop, not recursion: the
    value may be nearly as deep as the parser allows."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        yield item, depth
        if isinstance(item, dict):
            stack.extend((key, depth + 1) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _too_deep(value: Any) -> bool:
    return any(depth > MAX_DEPTH and isinstance(item, dict | list) for item, depth in _containers(value))


def _holds_surrogate(value: Any) -> bool:
    for item, _ in _containers(value):
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False
