"""Small Redis writes made at the same moment, sent as one pipeline.

A mass disconnect makes thousands of tasks each want one ``ZREM`` at once. Each on its own
connection overran the pool (``MaxConnectionsError``) and left ghosts in presence. ``Batcher``
queues the commands instead: one flusher sends everything queued so far as one pipeline (at most
``max_batch`` commands each), on one connection, while new commands queue for the next pipeline.

Contract: ``run`` returns when its command was executed, or raises the error of that command (or of
its whole pipeline, e.g. Redis down). A caller cancelled while waiting does not take its command
back: it is sent anyway, which is what a clean-up wants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from realtime.engine.redis_connect import RedisClient

Command = Callable[[Any], object]  # queues one command on the pipeline it is given


class Batcher:
    def __init__(self, redis: RedisClient, max_batch: int = 1000) -> None:
        self._redis = redis
        self._max_batch = max_batch
        self._queued: list[tuple[Command, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def run(self, command: Command) -> Any:
        """Queue ``command`` (e.g. ``lambda p: p.zrem(key, member)``) and return its reply."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queued.append((command, done))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush(), name="redis-batch")
        return await done

    async def _flush(self) -> None:
        try:
            while self._queued:
                batch = self._queued[: self._max_batch]
                del self._queued[: self._max_batch]
                await self._send(batch)
        finally:
            self._flusher = None

    async def _send(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for command, _ in batch:
                    command(pipe)
                replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for _, done in batch:
                if not done.done():
                    done.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every caller of this pipeline
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for (_, done), reply in zip(batch, replies, strict=True):
            if done.done():
                continue
            if isinstance(reply, Exception):
                done.set_exception(reply)
            else:
                done.set_result(reply)

    async def close(self) -> None:
        """Wait until everything queued has been sent."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
