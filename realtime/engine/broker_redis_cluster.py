"""Redis Cluster broker: live messages cross server processes through sharded pub/sub (Redis 7).

``SPUBLISH`` goes to the node owning the channel key's slot, and only that node's subscribers hear
it, so fan-out load spreads over the masters instead of every message reaching every node (classic
``PUBLISH`` in a cluster is broadcast over the cluster bus). A subscriber must therefore
``SSUBSCRIBE`` on the owning node: this broker keeps one pub/sub connection per master that owns
a live channel (opened on the first channel routed to it) and one reader task per connection.

Failure handling is all-or-nothing, as in broker_redis.py: when any of those connections is lost, or
a node tells us a channel moved (an ``sunsubscribe`` we did not ask for: slot migration, failover),
every connection is closed, the slot map is reloaded, every live channel is resubscribed on its
current owner and ``on_recover`` is told all of them. Contract: realtime/engine/broker.py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Iterable

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from realtime import metrics
from realtime.engine.broker import BrokerUnavailable
from realtime.engine.broker_redis_base import CONFIRM_TIMEOUT, MAX_BACKOFF, RedisBrokerBase
from realtime.engine.control import CONTROL
from realtime.engine.redis_connect import connect
from storage.cancellation import raise_if_cancelling

log = logging.getLogger("realtime.engine.broker_redis_cluster")

FAILURES = (RedisError, RedisClusterException, OSError)


class _Lost(Exception):
    """A shard connection ended or a channel moved: rebuild every subscription."""


class _Shard:
    """The pub/sub connection to one master and its reader."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.pubsub = client.pubsub()
        self.reader: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()
        with contextlib.suppress(Exception):
            await self.client.aclose()


class RedisClusterBroker(RedisBrokerBase):
    FAILURES = (*FAILURES, _Lost)
    TASK_NAME = "redis-cluster-broker-listener"

    def __init__(self, url: str, prefix: str = "wb:") -> None:
        connection = connect(url)
        cluster = connection.client
        if not isinstance(cluster, RedisCluster):
            raise ValueError("RedisClusterBroker needs a redis+cluster:// URL")
        super().__init__(connection, prefix)
        self._cluster = cluster
        self._shards: dict[str, _Shard] = {}  # node name -> its connection, while connected
        self._lost: asyncio.Future[None] | None = None  # fails when the current connections break
        self._unsubscribing: collections.Counter[bytes] = collections.Counter()

    @property
    def redis(self) -> RedisCluster:
        return self._cluster

    async def _listen(self) -> None:
        backoff = 0.05
        first = True
        while True:
            lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._lost = lost
            try:
                await self._cluster.initialize()  # once per client
                if not first:
                    await self._cluster.nodes_manager.initialize()  # the slot map as it is now
                channels = list(self._channels)
                waiters = []
                async with self._commands:
                    for key in [self._key(CONTROL), *(self._key(c) for c in channels)]:
                        waiters.append(self._confirming.expect(key))
                        await self._ssubscribe(key)
                # Confirmed before on_recover reads history, so nothing published in between is
                # missed; confirmations slower than that (thousands of channels) are not a failure:
                # the hub repairs a gap from history when the next message shows it.
                _, slow = await asyncio.wait(waiters, timeout=CONFIRM_TIMEOUT)
                if slow:
                    log.warning("redis cluster: %d resubscriptions not yet confirmed", len(slow))
                self.connected.set()
                if not first:
                    metrics.BROKER_RECONNECTS.inc()
                    log.info("redis cluster broker reconnected; resubscribed %d channels", len(channels))
                    if self._on_recover is not None:
                        self._on_recover(channels)
                first = False
                backoff = 0.05
                await lost
            except asyncio.CancelledError:
                raise
            except (*FAILURES, _Lost) as exc:
                metrics.BROKER_LISTEN_ERRORS.inc()
                if self.connected.is_set() or first:
                    why = str(exc) if isinstance(exc, _Lost) else type(exc).__name__
                    log.warning("redis cluster broker subscriptions lost (%s); rebuilding", why)
            finally:
                self.connected.clear()
                self._lost = None
                shards, self._shards = list(self._shards.values()), {}
                self._unsubscribing.clear()
                self._confirming.release_all()
                for shard in shards:
                    await shard.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _ssubscribe(self, key: str) -> None:
        """SSUBSCRIBE on the master owning ``key``'s slot, opening its connection on first use."""
        node = self._cluster.get_node_from_key(key)
        if node is None:
            raise _Lost(f"no node serves the slot of {key!r}")
        shard = self._shards.get(node.name)
        if shard is None:
            shard = self._shards[node.name] = _Shard(self._connection.node_client(node))
        await shard.pubsub.ssubscribe(key)
        if shard.reader is None:  # the connection exists once the first command went out
            shard.reader = asyncio.create_task(self._read(shard), name=f"redis-shard-{node.name}")

    def _fail(self, exc: BaseException) -> None:
        """End the current connections; the listener rebuilds them (whatever ``exc`` was)."""
        if not isinstance(exc, (*FAILURES, _Lost)):
            exc = _Lost(f"{type(exc).__name__}: {exc}")
        if self._lost is not None and not self._lost.done():
            self._lost.set_exception(exc)

    async def _read(self, shard: _Shard) -> None:
        skip = len(self._prefix) + 3
        try:
            while True:
                message = await shard.pubsub.get_message(timeout=None)
                if message is None:
                    continue
                kind = message["type"]
                if kind == "smessage" and self._on_message is not None:
                    try:
                        self._on_message(message["channel"][skip:].decode(), message["data"])
                    except Exception:
                        log.exception("broker callback failed")
                elif kind == "ssubscribe":
                    self._confirming.confirmed(message["channel"])
                elif kind == "sunsubscribe":
                    key = message["channel"]
                    if self._unsubscribing[key] > 0:
                        self._unsubscribing[key] -= 1
                    else:  # the node gave the slot away: route everything again
                        raise _Lost(f"{key!r} moved to another node")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any end of the reader means rebuild
            raise_if_cancelling()
            self._fail(exc)

    async def publish(self, channel: str, payload: bytes) -> None:
        try:
            await self._cluster.spublish(self._key(channel), payload)
        except FAILURES as exc:
            metrics.BROKER_PUBLISH_ERRORS.inc()
            raise BrokerUnavailable(str(exc) or type(exc).__name__) from exc

    async def publish_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        try:
            async with self._cluster.pipeline() as pipe:
                for channel, payload in items:
                    pipe.spublish(self._key(channel), payload)
                await pipe.execute()
        except FAILURES as exc:
            metrics.BROKER_PUBLISH_ERRORS.inc()
            raise BrokerUnavailable(str(exc) or type(exc).__name__) from exc

    async def _send_subscribe(self, key: str) -> bool:
        if not self.connected.is_set():
            return False
        try:
            await self._ssubscribe(key)
        except (*FAILURES, _Lost) as exc:
            self._fail(exc)  # a node we could not reach: the listener rebuilds and retries
            raise
        return True

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        key = self._key(channel)
        async with self._commands:
            if not self.connected.is_set():
                return
            with contextlib.suppress(*FAILURES):
                node = self._cluster.get_node_from_key(key)
                shard = self._shards.get(node.name) if node is not None else None
                if shard is not None:
                    self._unsubscribing[key.encode()] += 1
                    await shard.pubsub.sunsubscribe(key)
