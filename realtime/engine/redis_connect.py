"""Every Redis client of the server is built here, from ``REDIS_URL`` (config/redis_url.py).

- one server (``redis://``, ``rediss://``, ``unix://``): ``redis.asyncio.Redis.from_url``;
- Sentinel: ``Sentinel(...).master_for(SERVICE)``, a client whose connections ask the sentinels
  for the current master, so a connection opened after a failover reaches the new one;
- Cluster: ``RedisCluster``, which routes each command to the node owning its key's slot.

A :class:`RedisConnection` owns what it opened (the sentinels' clients too) and closes it all.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

from config.redis_url import RedisTarget, parse_redis_url

# Commands answer within this or count as failed; the pub/sub listener's blocking read is exempt.
SOCKET_TIMEOUT = 5.0

# A single server's connections, shared by the broker, presence and the limits. A burst (a mass
# disconnect, a join storm) waits for a free connection, at most POOL_TIMEOUT seconds, instead of
# failing at once with MaxConnectionsError as redis-py's default pool does past its limit.
POOL_SIZE = 50
POOL_TIMEOUT = 5.0

RedisClient = aioredis.Redis | RedisCluster


@dataclasses.dataclass
class RedisConnection:
    """The client for commands, the target it was built from, and (for Sentinel) the sentinels."""

    client: RedisClient
    target: RedisTarget
    sentinels: list[aioredis.Redis] = dataclasses.field(default_factory=list)

    def node_client(self, node: ClusterNode) -> aioredis.Redis:
        """A plain client of one cluster node, with the URL's credentials and TLS (for the sharded
        pub/sub connections, which belong to one node each)."""
        return aioredis.Redis(host=node.host, port=int(node.port), **_node_options(self.target))

    async def aclose(self) -> None:
        await self.client.aclose()
        for sentinel in self.sentinels:
            with contextlib.suppress(Exception):
                await sentinel.aclose()


def connect(url: str) -> RedisConnection:
    """The client for ``url``; nothing connects until the first command."""
    target = parse_redis_url(url)
    if target.kind == "single":
        pool = aioredis.BlockingConnectionPool.from_url(
            target.url,
            max_connections=POOL_SIZE,
            timeout=POOL_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
        )
        return RedisConnection(aioredis.Redis.from_pool(pool), target)
    if target.kind == "sentinel":
        sentinel_options = _options(target.sentinel_username, target.sentinel_password)
        sentinel = Sentinel(list(target.hosts), sentinel_kwargs=sentinel_options)
        master = sentinel.master_for(target.service, db=target.db, **_node_options(target))
        return RedisConnection(master, target, list(sentinel.sentinels))
    nodes = [ClusterNode(host, port) for host, port in target.hosts]
    cluster = RedisCluster(startup_nodes=nodes, **_node_options(target))
    return RedisConnection(cluster, target)


def _node_options(target: RedisTarget) -> dict[str, Any]:
    """Options of a connection to a data node (a master, a replica, a cluster node)."""
    return _options(target.username, target.password, tls=target.tls)


def _options(username: str | None, password: str | None, tls: bool = False) -> dict[str, Any]:
    options: dict[str, Any] = {"socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": SOCKET_TIMEOUT}
    if username:
        options["username"] = username
    if password:
        options["password"] = password
    if tls:
        options["ssl"] = True
    return options
