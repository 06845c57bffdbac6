"""``REDIS_URL``: which Redis topology the server talks to, parsed once with errors that say what is wrong.

- ``redis://[user:pass@]host[:port][/db]``, ``rediss://...`` (TLS), ``unix:///path/to/socket[?db=N]``:
  one Redis server (redis-py's own URL syntax).
- ``redis+sentinel://[user:pass@]host1:26379,host2:26379/SERVICE[?db=N&sentinel_password=...]``:
  the master of ``SERVICE`` as the sentinels name it, followed across failovers. ``user:pass`` is
  for the master and its replicas; ``sentinel_password`` (and ``sentinel_username``) for the
  sentinels when they require it. ``rediss+sentinel://`` uses TLS to the master.
- ``redis+cluster://[user:pass@]host1:7000,host2:7001[/]``: a Redis Cluster reached through any
  of the listed nodes (the rest are discovered); database 0 only, as Cluster has no others.
  ``rediss+cluster://`` uses TLS.
"""

from __future__ import annotations

import dataclasses
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

SINGLE_SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SCHEMES = SINGLE_SCHEMES + SENTINEL_SCHEMES + CLUSTER_SCHEMES
DEFAULT_PORTS = {"sentinel": 26379, "cluster": 6379}
SENTINEL_OPTIONS = {"db", "sentinel_username", "sentinel_password"}


class RedisUrlError(ValueError):
    """``REDIS_URL`` cannot be used; the message says why without repeating any password."""


@dataclasses.dataclass(frozen=True)
class RedisTarget:
    """A parsed ``REDIS_URL``. ``url`` is the original text (single-server kind: handed to redis-py)."""

    kind: Literal["single", "sentinel", "cluster"]
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    tls: bool = False

    def identity(self) -> str:
        """Where messages go, without secrets: equal for processes that reach each other."""
        if self.kind == "single":
            parts = urlsplit(self.url)
            if parts.scheme == "unix":
                return f"unix://{parts.path}"
            return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"
        hosts = ",".join(f"{h}:{p}" for h, p in sorted(self.hosts))
        if self.kind == "sentinel":
            return f"redis+sentinel://{hosts}/{self.service} db={self.db}"
        return f"redis+cluster://{hosts}"


def parse_redis_url(url: str) -> RedisTarget:
    """Parse ``REDIS_URL``; raise :class:`RedisUrlError` naming the problem."""
    text = url.strip()
    scheme, sep, _ = text.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise RedisUrlError(f"must start with one of {', '.join(s + '://' for s in SCHEMES)}")
    scheme = scheme.lower()
    if scheme in SINGLE_SCHEMES:
        parts = urlsplit(text)
        if not (parts.hostname or parts.path):
            raise RedisUrlError(f"a {scheme}:// URL needs a host or a socket path")
        try:
            parts.port  # noqa: B018  # raises ValueError for a port that is not a number in 0-65535
        except ValueError:
            raise RedisUrlError("the port must be a number between 0 and 65535") from None
        return RedisTarget("single", text)
    rest = text[len(scheme) + 3 :]
    netloc, _, tail = rest.partition("/")
    path, _, query = tail.partition("?")
    if "?" in netloc:
        netloc, _, query = netloc.partition("?")
    userinfo, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    kind: Literal["sentinel", "cluster"] = "sentinel" if scheme in SENTINEL_SCHEMES else "cluster"
    hosts = _hosts(hostlist, DEFAULT_PORTS[kind], scheme)
    options = _options(query, SENTINEL_OPTIONS if kind == "sentinel" else set(), scheme)
    tls = scheme.startswith("rediss")
    if kind == "sentinel":
        service = unquote(path.strip("/"))
        if not service or "/" in service:
            raise RedisUrlError(
                f"{scheme}:// needs the sentinels' service name as its path, e.g. "
                f"{scheme}://host1:26379,host2:26379/mymaster"
            )
        return RedisTarget(
            "sentinel",
            text,
            hosts,
            service=service,
            db=_db(options.get("db", "0")),
            username=username,
            password=password,
            sentinel_username=options.get("sentinel_username"),
            sentinel_password=options.get("sentinel_password"),
            tls=tls,
        )
    if path.strip("/") not in ("", "0"):
        raise RedisUrlError(f"{scheme}:// takes no database: Redis Cluster has database 0 only")
    return RedisTarget("cluster", text, hosts, username=username, password=password, tls=tls)


def _hosts(hostlist: str, default_port: int, scheme: str) -> tuple[tuple[str, int], ...]:
    if not hostlist.strip():
        raise RedisUrlError(f"{scheme}:// needs at least one host, e.g. {scheme}://host1:{default_port}")
    found: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        item = item.strip()
        if item.startswith("["):  # [IPv6]:port
            host, bracket, after = item[1:].partition("]")
            if not bracket or (after and not after.startswith(":")):
                raise RedisUrlError(f"bad host {item!r}: expected [address]:port")
            port_text = after[1:]
        else:
            host, _, port_text = item.partition(":")
        if not host:
            raise RedisUrlError(f"empty host in {scheme}:// host list (hosts are separated by commas)")
        port = default_port
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise RedisUrlError(f"bad port in {item!r}: expected a number between 1 and 65535")
            port = int(port_text)
        found.append((host, port))
    return tuple(found)


def _options(query: str, allowed: set[str], scheme: str) -> dict[str, str]:
    try:
        pairs = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise RedisUrlError(f"bad query string in the {scheme}:// URL") from None
    unknown = sorted(set(pairs) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise RedisUrlError(f"unknown option {unknown[0]!r} in the {scheme}:// URL (known: {known})")
    return {key: values[-1] for key, values in pairs.items()}


def _db(text: str) -> int:
    if not text.isdigit():
        raise RedisUrlError(f"db must be a database number, got {text!r}")
    return int(text)
