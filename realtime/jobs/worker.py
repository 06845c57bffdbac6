"""The background worker: one asyncio loop per server process, polling the ``jobs`` collection.

Each process claims due jobs under a lease (storage/jobs.py), runs the handler registered for the
job's kind, renews the lease while the handler runs, and records the outcome. Several processes may
run workers on the same database: a job is handed to one of them at a time, and a job whose
process died is picked up again after its lease expires.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from realtime import metrics
from storage.cancellation import raise_if_cancelling
from storage.jobs import Job, JobQueue, LeaseLost

log = logging.getLogger("realtime.jobs.worker")

JobHandler = Callable[[Job], Awaitable[dict[str, Any] | None]]


class RetryLater(Exception):
    """Raised by a handler to retry after ``delay`` seconds (e.g. a push service answered 429)."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class Worker:
    def __init__(
        self,
        queue: JobQueue,
        *,
        poll_interval: float,
        lease_seconds: float = 30.0,
        concurrency: int = 4,
        kinds: frozenset[str] | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> None:
        self.queue = queue
        self.kinds = kinds  # None: every kind but those in ``skip`` (another process runs them)
        self.skip = skip
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.handlers: dict[str, JobHandler] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.idle = False  # waiting for a wake-up or the next poll (nothing was due)

    def register(self, kind: str, handler: JobHandler) -> None:
        self.handlers[kind] = handler

    def wake(self) -> None:
        """Poll now instead of at the next interval (a job was just queued in this process)."""
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="job-worker")

    async def close(self) -> None:
        """Stop claiming; wait briefly for running jobs, then cancel them (their leases expire)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._running:
            _, pending = await asyncio.wait(self._running, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self._slots.acquire()
                job = await self._claim()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._slots.release()
                raise_if_cancelling()
                log.exception("claiming a job failed")
                await asyncio.sleep(self.poll_interval)
                continue
            if job is None:
                self._slots.release()
                self._wake.clear()
                self.idle = True
                try:
                    await self._wake_or_poll()
                finally:
                    self.idle = False
                continue
            task = asyncio.create_task(self._run(job), name=f"job-{job.kind}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _wake_or_poll(self) -> None:
        """Until :meth:`wake` or ``poll_interval``. ``asyncio.timeout``, not ``wait_for``: on Python 3.11
        ``wait_for`` returns instead of raising when the task is cancelled in the same loop step as the
        event is set, and :meth:`close` then waited for a loop that never ended."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.poll_interval):
                await self._wake.wait()

    async def run_one(self) -> bool:
        """Claim and run one due job in the caller's task; False when none was due (tests, CLI)."""
        job = await self._claim()
        if job is None:
            return False
        await self._slots.acquire()
        await self._run(job)
        return True

    async def _claim(self) -> Job | None:
        return await self.queue.claim(self.owner, self.lease_seconds, kinds=self.kinds, skip=self.skip)

    async def _run(self, job: Job) -> None:
        renew = asyncio.create_task(self._renew(job))
        try:
            handler = self.handlers.get(job.kind)
            if handler is None:
                metrics.job_ran("unknown", "failed")  # never the stored kind: labels stay bounded
                await self.queue.fail(job, f"no handler for kind {job.kind!r}")
                return
            result = await handler(job)
            metrics.job_ran(job.kind, "done")
            await self.queue.complete(job, result)
        except asyncio.CancelledError:
            raise
        except LeaseLost as exc:
            metrics.job_ran(job.kind, "lost")
            log.warning("job %s (%s) stopped: %s", job.id, job.kind, exc)
        except RetryLater as exc:
            metrics.job_ran(job.kind, "retry")
            await self.queue.fail(job, str(exc), retry_in=exc.delay)
        except Exception as exc:
            raise_if_cancelling()
            metrics.job_ran(job.kind, "failed")
            log.exception("job %s (%s) failed, attempt %d", job.id, job.kind, job.attempts)
            await self.queue.fail(job, f"{type(exc).__name__}: {exc}")
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
            self._slots.release()

    async def _renew(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            if not await self.queue.extend(job, self.lease_seconds):
                log.warning("lost the lease of job %s", job.id)
                return
