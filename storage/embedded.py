"""The embedded MongoDB-wire server: SecantusDB run as a child process.

SecantusDB is GPL-2.0; running it as a separate process (never importing it) keeps this product's own
licence free to choose. ``--sync-on-commit`` makes every acknowledged write survive a crash.
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

log = logging.getLogger("storage.embedded")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedMongo:
    """Start, wait for and stop one SecantusDB child process storing its data in ``path``."""

    def __init__(self, path: Path, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.path = Path(path)
        self.host = host
        self.port = port or free_port(host)
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    async def start(self, timeout: float = 60.0) -> str:
        self.path.mkdir(parents=True, exist_ok=True)
        log_path = self.path.parent / f"{self.path.name}.log"
        with open(log_path, "ab") as log_file:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "secantus",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--storage-path",
                str(self.path),
                "--sync-on-commit",
                "--log-level",
                "WARNING",
                stdout=log_file,
                stderr=log_file,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self._proc.returncode is not None:
                raise RuntimeError(f"embedded database exited with {self._proc.returncode}; see {log_path}")
            try:
                _, writer = await asyncio.open_connection(self.host, self.port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            log.info("embedded database listening on %s:%s (data in %s)", self.host, self.port, self.path)
            return self.url
        await self.stop()
        raise RuntimeError(f"embedded database did not start within {timeout:.0f}s; see {log_path}")

    async def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
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


async def database_url(configured: str, data_path: Path) -> tuple[str, EmbeddedMongo | None]:
    """``configured`` when set; else start the embedded server under ``data_path`` (the caller
    stops the returned server on shutdown)."""
    if configured:
        return configured, None
    embedded = EmbeddedMongo(data_path / "mongo")
    return await embedded.start(), embedded
