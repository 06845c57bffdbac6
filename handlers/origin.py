"""Origin checks for WebSockets and SSE: the server's own origin plus ``ALLOWED_ORIGINS``."""

from __future__ import annotations

from urllib.parse import urlsplit


def normalise(origin: str) -> str:
    """``scheme://host:port``, or "" for anything that is not such an origin (a port past 65535, a
    bracket left open), which no check allows."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    except ValueError:
        return ""
    if not parts.scheme or not parts.hostname:
        return ""
    return f"{parts.scheme}://{parts.hostname}:{port}"


def origin_allowed(origin: str, host_header: str, base_url: str, allowed: tuple[str, ...]) -> bool:
    want = normalise(origin)
    if not want:
        return False
    if "*" in allowed:
        return True
    permitted = {normalise(base_url)} | {normalise(o) for o in allowed}
    scheme = want.split("://", 1)[0]
    permitted.add(normalise(f"{scheme}://{host_header}"))  # same origin as the request itself
    return want in permitted
