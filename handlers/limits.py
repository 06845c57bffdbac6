"""Rate limits at the HTTP edge: 429 ``rate_limited`` with the seconds to wait (``Retry-After``)."""

from __future__ import annotations

from storage.errors import Kind, Refused
from storage.rate_limits import Limiter

MINUTE = 60.0
HOUR = 3600.0


async def enforce(limits: Limiter, key: str, limit: int, window: float, what: str) -> None:
    """Count one attempt of ``what`` under ``key``; past ``limit`` per ``window`` seconds raise 429 with
    ``retry_after`` (rendered as the ``Retry-After`` header and beside the error's code)."""
    wait = await limits.hit(key, limit, window)
    if wait:
        raise Refused(
            Kind.RATE_LIMITED, "rate_limited", f"too many {what}; retry in {wait} s", retry_after=wait
        )
