"""Several worker processes on one port (``WORKERS`` > 1).

The supervisor is the process the operator starts. It binds the listening sockets once (before
anything else, realtime/process/listen.py), starts the embedded database when there is no
``MONGODB_URL`` (one database for every worker), and starts ``WORKERS`` copies of ``server.py`` that
inherit the sockets: the kernel hands each new connection to one of them. Each worker gets its slot
as ``WORKER_INDEX`` (realtime/process/worker.py) and, with the embedded database, its URL as
``MONGODB_URL``. With ``MAIL_PROCESS`` (which brings a supervisor even for one worker) it starts
the mail process too, in the slot after the workers', without the sockets; it is kept running
(and stopped) like a worker.

- A worker that exits while the supervisor is not stopping is started again in its slot after a
  backoff: 0.5 s, doubling up to 30 s, back to 0.5 s once a worker has run for a minute.
- SIGTERM or SIGINT is passed on to every worker, which drains (realtime/process/drain.py). The
  supervisor closes its own copy of the sockets, waits up to ``SHUTDOWN_TIMEOUT`` plus a margin,
  kills what is left, then stops the embedded database. It exits 0 when every worker did.
- Each worker watches a pipe from the supervisor (:data:`SUPERVISOR_FD`): if the supervisor dies,
  even by SIGKILL, its workers drain and exit instead of serving on unsupervised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Mapping

from config import Settings
from realtime.process.drain import StopSignal, pause
from realtime.process.listen import LISTEN_FDS
from realtime.process.worker import MAIL, ROLE, SUPERVISOR_FD, WORKER_INDEX
from storage.embedded import database_url

log = logging.getLogger("realtime.process.supervisor")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
HEALTHY_RUN = 60.0  # a worker that ran this long resets the backoff
STOP_MARGIN = 5.0  # beyond SHUTDOWN_TIMEOUT, before the workers left are killed


class Supervisor:
    """Run ``command`` (``python server.py``) as ``settings.workers`` workers on ``sockets``."""

    def __init__(
        self,
        settings: Settings,
        sockets: list[socket.socket],
        command: list[str],
        environ: Mapping[str, str],
    ) -> None:
        self.settings = settings
        self.sockets = sockets
        self.command = command
        self.environ = dict(environ)
        self.stop = StopSignal()
        self.workers: dict[int, asyncio.subprocess.Process] = {}
        self.codes: dict[int, int] = {}

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal)
        url, embedded = await database_url(self.settings.mongodb_url.reveal(), self.settings.data_path)
        read_end, write_end = os.pipe()  # the write end stays open here until this process ends
        fds = [s.fileno() for s in self.sockets]
        env = {
            **self.environ,
            "MONGODB_URL": url,
            LISTEN_FDS: ",".join(str(fd) for fd in fds),
            SUPERVISOR_FD: str(read_end),
        }
        try:
            slots = [
                asyncio.create_task(self._keep(i, env, [*fds, read_end]))
                for i in range(self.settings.workers)
            ]
            if self.settings.mail_process:  # no listener: it serves nothing
                mail = {k: v for k, v in env.items() if k != LISTEN_FDS} | {ROLE: MAIL}
                slots.append(asyncio.create_task(self._keep(self.settings.workers, mail, [read_end])))
            log.info(
                "supervising %d workers%s (pid %d)",
                self.settings.workers,
                " and the mail process" if self.settings.mail_process else "",
                os.getpid(),
            )
            await self.stop.requested.wait()
            for sock in self.sockets:  # the workers hold the listener open while they drain
                sock.close()
            done, waiting = await asyncio.wait(slots, timeout=self.settings.shutdown_timeout + STOP_MARGIN)
            for proc in list(self.workers.values()):
                log.error("worker pid %d did not stop in time; killing it", proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            if waiting:
                await asyncio.wait(waiting)
        finally:
            os.close(read_end)
            os.close(write_end)
            if embedded is not None:
                await embedded.stop()
        # a worker still starting when SIGTERM came had nothing to drain: it ends by the signal
        return 0 if all(code in (0, -signal.SIGTERM) for code in self.codes.values()) else 1

    def _on_signal(self) -> None:
        """Pass every SIGTERM/SIGINT on to the workers (a second one skips their drain's waits)."""
        log.info("stopping: passing SIGTERM on to the workers")
        self.stop.request()
        for proc in list(self.workers.values()):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)

    async def _keep(self, index: int, env: dict[str, str], fds: list[int]) -> None:
        """Keep worker ``index`` running until the stop, restarting it after a backoff."""
        loop = asyncio.get_running_loop()
        backoff = BACKOFF_FIRST
        while True:
            started = loop.time()
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                env={**env, WORKER_INDEX: str(index)},
                pass_fds=fds,
                process_group=0,  # a terminal's Ctrl-C reaches the supervisor, which passes it on
            )
            self.workers[index] = proc
            log.info("worker %d started (pid %d)", index, proc.pid)
            if self.stop.requested.is_set():  # the signal came while it was being started
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            code = await proc.wait()
            del self.workers[index]
            self.codes[index] = code
            if self.stop.requested.is_set():
                log.info("worker %d (pid %d) stopped with %d", index, proc.pid, code)
                return
            backoff = BACKOFF_FIRST if loop.time() - started >= HEALTHY_RUN else backoff
            why = f"signal {-code}" if code < 0 else f"code {code}"
            log.error("worker %d (pid %d) exited with %s; restarting in %g s", index, proc.pid, why, backoff)
            await pause(backoff, self.stop.requested)
            if self.stop.requested.is_set():
                return
            backoff = min(BACKOFF_MAX, backoff * 2)
