"""The embedded MongoDB-wire server: SecantusDB run as a child process.

SecantusDB is GPL-2.0; running it as a separate process (never importing it) keeps this product's own
licence free to choose. ``--sync-on-commit`` makes every acknowledged write survive a crash.

Lifecycle contract:

- **The child dies with its parent.** On Linux the child asks the kernel (``prctl(PR_SET_PDEATHSIG)``)
  for SIGTERM when the process that started it exits, however it exits (``kill -9`` included). The
  request is made by a small launcher that then ``exec``s SecantusDB, not in ``preexec_fn`` (unsafe
  with threads). The signal follows the *thread* that started the child: start it from the thread
  that lives as long as the process (the event loop's thread in ``server.py``).
- **A start deals with what a dead start left behind** (storage/embedded_process.py finds it): a
  SecantusDB on the directory whose owner died is stopped, with a warning naming it; one whose owner
  is alive is another running server's and the start is refused, naming that process and its URL.
- :func:`database_url` with ``share=True`` uses the embedded database a running process started
  (recorded in ``<DATA_DIR>/mongo.json``) and starts its own only when none runs: for the admin
  commands, and for worker processes of a supervising parent that started it (which may instead
  pass the URL on as ``MONGODB_URL``). A server without ``share`` never piggybacks on another
  server's database, which would vanish when that server stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from storage import embedded_process as proc_state

log = logging.getLogger("storage.embedded")

# Runs as ``python -c LAUNCHER <parent pid> <argv...>``: ask for SIGTERM when the parent dies, give up
# if it already died (before the request was made), then become SecantusDB (same pid, signal kept).
LAUNCHER = """\
import ctypes, os, signal, sys
parent = int(sys.argv[1])
if sys.platform.startswith("linux"):
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
if os.getppid() != parent:
    sys.exit(3)
os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
"""


class EmbeddedInUse(RuntimeError):
    """Another live process owns the embedded database on this directory."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def url_of(host: str, port: int) -> str:
    return f"mongodb://{host}:{port}/?directConnection=true"


class EmbeddedMongo:
    """Start, wait for and stop one SecantusDB child process storing its data in ``path``."""

    def __init__(self, path: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.path = Path(path)
        self.host = host
        self.port = port or free_port(host)
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return url_of(self.host, self.port)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self, timeout: float = 60.0) -> str:
        self.path.mkdir(parents=True, exist_ok=True)
        await clear_stale(self.path)
        log_path = self.path.parent / f"{self.path.name}.log"
        argv = ["-m", "secantus", "--host", self.host, "--port", str(self.port)]
        argv += ["--storage-path", str(self.path), "--sync-on-commit", "--log-level", "WARNING"]
        with open(log_path, "ab") as log_file:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                LAUNCHER,
                str(os.getpid()),
                *argv,
                stdout=log_file,
                stderr=log_file,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the server, which stops the database after
            )
        try:
            await self._wait_listening(timeout, log_path)
        except BaseException:
            await self.stop()
            raise
        proc_state.write_state(self.path, pid=self._proc.pid, url=self.url)
        log.info("embedded database listening on %s:%s (data in %s)", self.host, self.port, self.path)
        return self.url

    async def _wait_listening(self, timeout: float, log_path: Path) -> None:
        assert self._proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._proc.returncode is not None:
                await clear_stale(self.path, stop_orphan=False)  # another start won a race: name it
                raise RuntimeError(f"embedded database exited with {self._proc.returncode}; see {log_path}")
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        raise RuntimeError(f"embedded database did not start within {timeout:.0f}s; see {log_path}")

    async def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc_state.remove_state(self.path, proc.pid)
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
        log.info("embedded database stopped")


async def clear_stale(path: Path, *, stop_orphan: bool = True) -> None:
    """Before starting on ``path``: stop an orphaned SecantusDB on it, refuse if a live one is owned
    (or, without ``stop_orphan``, if there is any).

    Raises :class:`EmbeddedInUse` naming the owner (or the pid when it cannot be verified)."""
    running = await asyncio.to_thread(proc_state.find_running, path)
    if running is None:
        return
    if running.owned or not running.verified or not stop_orphan:
        where = f" at {running.url}" if running.url else ""
        raise EmbeddedInUse(
            f"the embedded database in {path} is already running{where} (pid {running.pid}, "
            f"started by pid {running.owner}); stop that process first, or set MONGODB_URL to "
            "share its database"
        )
    log.warning(
        "stopping an orphaned embedded database (pid %d, its server pid %d is gone) in %s",
        running.pid,
        running.owner,
        path,
    )
    if not await asyncio.to_thread(proc_state.terminate, running.pid):
        raise EmbeddedInUse(f"could not stop the orphaned embedded database (pid {running.pid}) in {path}")


def running_url(path: Path) -> str | None:
    """The URL of the live embedded database on ``path`` started by a running process, else None."""
    running = proc_state.find_running(path)
    if running is None or not running.owned or not running.url:
        return None
    return running.url


async def database_url(
    configured: str, data_path: Path, *, share: bool = False
) -> tuple[str, EmbeddedMongo | None]:
    """``configured`` when set; else start the embedded server under ``data_path`` (the caller
    stops the returned server on shutdown). With ``share``, the embedded server a running process
    started on ``data_path`` is used when there is one (nothing to stop: None is returned)."""
    if configured:
        return configured, None
    path = data_path / "mongo"
    if share:
        url = await asyncio.to_thread(running_url, path)
        if url is not None:
            log.info("using the running embedded database at %s", url)
            return url, None
    embedded = EmbeddedMongo(path)
    return await embedded.start(), embedded
