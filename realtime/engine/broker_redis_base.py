"""What the two Redis brokers share (broker_redis.py: one server or a Sentinel service;
broker_redis_cluster.py: a Cluster with sharded pub/sub): the listener task and its callbacks, the
channel keys, the confirmed subscribe, readiness and close. Each broker supplies its listener
(``_listen``), how a (S)SUBSCRIBE is sent (``_send_subscribe``) and which errors mean Redis failed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

from realtime.engine.broker import MessageCallback, RecoverCallback
from realtime.engine.redis_connect import RedisConnection

log = logging.getLogger("realtime.engine.broker_redis")

MAX_BACKOFF = 5.0
CONFIRM_TIMEOUT = 5.0  # the longest a subscribe waits for Redis's confirmation


class Confirmations:
    """Subscribers waiting for Redis to confirm their (S)SUBSCRIBE, per channel key in send order."""

    def __init__(self) -> None:
        self._waiting: dict[bytes, collections.deque[asyncio.Future[None]]] = {}

    def expect(self, key: str) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key.encode(), collections.deque()).append(waiter)
        return waiter

    def confirmed(self, key: bytes) -> None:
        waiting = self._waiting.get(key)
        if waiting:
            waiter = waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
            if not waiting:
                del self._waiting[key]

    def forget(self, key: str, waiter: asyncio.Future[None]) -> None:
        waiting = self._waiting.get(key.encode())
        if waiting is not None and waiter in waiting:
            waiting.remove(waiter)
            if not waiting:
                del self._waiting[key.encode()]

    def release_all(self) -> None:
        """The connection is gone: nobody waits (the listener resubscribes, ``on_recover`` repairs)."""
        for waiting in self._waiting.values():
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_result(None)
        self._waiting.clear()


class RedisBrokerBase:
    FAILURES: tuple[type[BaseException], ...] = ()  # what a command raises when Redis failed
    TASK_NAME = "redis-broker-listener"

    def __init__(self, connection: RedisConnection, prefix: str) -> None:
        self._prefix = prefix
        self._connection = connection
        self._channels: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._on_message: MessageCallback | None = None
        self._on_recover: RecoverCallback | None = None
        self._confirming = Confirmations()
        self._commands = asyncio.Lock()  # (S)SUBSCRIBE/(S)UNSUBSCRIBE sent one at a time, in call order
        self.connected = asyncio.Event()

    def _key(self, channel: str) -> str:
        return self._prefix + "ch:" + channel

    async def start(self, on_message: MessageCallback, on_recover: RecoverCallback) -> None:
        self._on_message = on_message
        self._on_recover = on_recover
        self._task = asyncio.create_task(self._listen(), name=self.TASK_NAME)
        # Wait briefly for the first connection so early subscribers are not racing it; a Redis
        # that is down at start-up is retried in the background like any later outage.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), 5)

    async def _listen(self) -> None:
        raise NotImplementedError

    async def _send_subscribe(self, key: str) -> bool:
        """Send the subscribe of ``key`` (under ``_commands``); False while there is no connection
        (the listener subscribes every channel in ``_channels`` when it reconnects)."""
        raise NotImplementedError

    async def subscribe(self, channel: str) -> None:
        """Subscribe and wait until Redis confirms it (up to CONFIRM_TIMEOUT); while Redis is down,
        return at once: the listener resubscribes everything in ``_channels`` when it reconnects."""
        self._channels.add(channel)
        key = self._key(channel)
        waiter: asyncio.Future[None] | None = None
        try:
            async with self._commands:
                waiter = self._confirming.expect(key)
                if not await self._send_subscribe(key):
                    return
            await asyncio.wait_for(asyncio.shield(waiter), CONFIRM_TIMEOUT)
        except self.FAILURES:
            log.debug("subscribe to %s deferred until reconnect", channel)
        except TimeoutError:
            log.warning("redis did not confirm subscribing to %s in %.0f s", channel, CONFIRM_TIMEOUT)
        finally:
            if waiter is not None:
                self._confirming.forget(key, waiter)

    async def ready(self) -> bool:
        try:
            client: Any = self._connection.client
            return bool(await client.ping()) and self.connected.is_set()
        except self.FAILURES:
            return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._connection.aclose()
