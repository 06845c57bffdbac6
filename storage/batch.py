"""Coalescing concurrent lookups into one query: what a join storm needs from the database.

:class:`Batcher` collects the keys asked for while the event loop is busy and answers them all with
one ``fetch(keys)`` (one ``$in`` query) instead of one round trip each. It never answers from a
cache: every key is fetched by a query *sent after it was asked for* (a key asked for while a fetch
is in flight waits for the next one), so a ban or a cancellation written before the lookup is seen
exactly as by a query of its own. At most ``concurrency`` fetches are in flight; the keys asked for
meanwhile form the next batch (at most ``max_keys`` a query). A failed fetch fails the lookups of
its batch only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[list[K]], Awaitable[dict[K, V]]]
UserKey = tuple[str, str]  # (webinar_id, user_id): whose own state in which webinar


def by_webinar(keys: Iterable[UserKey]) -> dict[str, list[str]]:
    """The user ids asked for, per webinar: one ``user_id: {$in: ...}`` query each."""
    users: dict[str, list[str]] = {}
    for webinar_id, user_id in keys:
        users.setdefault(webinar_id, []).append(user_id)
    return users


class Batcher(Generic[K, V]):
    def __init__(self, fetch: Fetch[K, V], *, missing: V, max_keys: int = 500, concurrency: int = 2) -> None:
        """``fetch(keys)`` returns the found keys' values; a key it leaves out is ``missing``."""
        self._fetch = fetch
        self._missing = missing
        self.max_keys = max_keys
        self.concurrency = concurrency
        self._waiting: dict[K, list[asyncio.Future[V]]] = {}
        self._in_flight = 0
        self._scheduled = False
        self.fetches = 0  # queries sent (for tests and the benchmark's curiosity)

    async def get(self, key: K) -> V:
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(future)
        self._schedule()
        return await future

    def _schedule(self) -> None:
        # call_soon: the keys asked for by everything runnable in this loop iteration share a query
        if not self._scheduled and self._waiting and self._in_flight < self.concurrency:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        while self._waiting and self._in_flight < self.concurrency:
            keys = list(self._waiting)[: self.max_keys]
            batch = {k: self._waiting.pop(k) for k in keys}
            self._in_flight += 1
            asyncio.get_running_loop().create_task(self._run(batch))

    async def _run(self, batch: dict[K, list[asyncio.Future[V]]]) -> None:
        try:
            self.fetches += 1
            found = await self._fetch(list(batch))
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else RuntimeError("lookup cancelled")
            _settle(batch.values(), lambda f: f.set_exception(error))
            if not isinstance(exc, Exception):
                raise
        else:
            for key, futures in batch.items():
                value = found.get(key, self._missing)
                _settle([futures], lambda f, v=value: f.set_result(v))  # type: ignore[misc]
        finally:
            self._in_flight -= 1
            self._schedule()


async def gather_bounded(calls: Iterable[Callable[[], Awaitable[V]]], limit: int) -> list[V]:
    """Await every call, at most ``limit`` at once; the results in call order. The first failure
    cancels the calls still running and is raised as itself (not as an ``ExceptionGroup``)."""
    slots = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[V]]) -> V:
        async with slots:
            return await call()

    try:
        async with asyncio.TaskGroup() as tasks:
            started = [tasks.create_task(one(call)) for call in calls]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in started]


def _settle(groups: Iterable[list[asyncio.Future[V]]], settle: Callable[[asyncio.Future[V]], None]) -> None:
    for futures in groups:
        for f in futures:
            if not f.done():  # its caller may have been cancelled
                settle(f)
