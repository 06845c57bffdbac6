"""What is running on an embedded database directory: the state file its owner writes, and the
operating system's word on whether a recorded process is alive and really SecantusDB on that directory.

The state file (``<data dir>/mongo.json`` beside ``<data dir>/mongo/``) holds the child's ``pid``,
its ``url``, its ``storage_path`` and the ``owner`` (the pid of the process that started it and
stops it). It is written once the child listens and removed when the owner stops it, so a file left
behind means its owner died without stopping it (or is still running).

A recorded pid is trusted only when ``/proc/<pid>/cmdline`` shows SecantusDB on the same storage
path (a pid the kernel handed to another program since is ignored), and the child counts as owned
only while its parent is the recorded owner (an orphan has been re-parented, so even a recycled owner
pid does not pass). Without ``/proc`` (not Linux) nothing can be verified, and a live recorded child
is never stopped, only reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROC = Path("/proc")


@dataclass(frozen=True)
class Running:
    """A live SecantusDB on the directory: its pid, URL (empty when unknown) and whether the process
    that started it is still its parent (``owner`` is that pid, 0 when unknown)."""

    pid: int
    url: str
    owner: int
    owned: bool
    verified: bool  # /proc confirmed the command line; False where it cannot be checked


def state_path(storage_path: Path) -> Path:
    return storage_path.parent / f"{storage_path.name}.json"


def write_state(storage_path: Path, *, pid: int, url: str) -> None:
    """Record the running child atomically (a reader never sees half a file)."""
    path = state_path(storage_path)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    doc = {"pid": pid, "url": url, "storage_path": str(storage_path.resolve()), "owner": os.getpid()}
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)


def remove_state(storage_path: Path, pid: int) -> None:
    """Remove the state file if it still describes ``pid`` (a newer owner's file stays)."""
    path = state_path(storage_path)
    if read_state(storage_path).get("pid") == pid:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def read_state(storage_path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(state_path(storage_path).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, parent pid) from /proc/<pid>/stat; None when the process is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # the command name may hold spaces and parentheses
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    if pid <= 0:
        return False
    stat = _stat(pid)
    if stat is not None:
        return stat[0] not in ("Z", "X")  # a zombie has exited; only its parent has not reaped it
    if PROC.is_dir():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serves(pid: int, storage_path: Path) -> bool:
    """Whether ``pid`` is SecantusDB with ``storage_path`` as its storage directory."""
    args = _cmdline(pid)
    if not args or "secantus" not in args:
        return False
    want = str(storage_path.resolve())
    for i, arg in enumerate(args[:-1]):
        if arg == "--storage-path":
            return str(Path(args[i + 1]).resolve()) == want
    return False


def parent(pid: int) -> int:
    stat = _stat(pid)
    return stat[1] if stat else 0


def find_running(storage_path: Path) -> Running | None:
    """The live SecantusDB on ``storage_path``: the recorded one, else (Linux) any process found
    serving that directory (one left by a version that wrote no state file)."""
    state = read_state(storage_path)
    pid, owner = int(state.get("pid", 0)), int(state.get("owner", 0))
    if pid and alive(pid):
        if not PROC.is_dir():
            return Running(pid, str(state.get("url", "")), owner, alive(owner), verified=False)
        if serves(pid, storage_path):
            return Running(pid, str(state.get("url", "")), owner, parent(pid) == owner, verified=True)
    if not PROC.is_dir():
        return None
    for entry in PROC.iterdir():
        if entry.name.isdigit() and serves(int(entry.name), storage_path) and alive(int(entry.name)):
            other = int(entry.name)
            ppid = parent(other)
            return Running(other, "", ppid, owned=ppid != 1, verified=True)
    return None


def terminate(pid: int, timeout: float = 15.0) -> bool:
    """SIGTERM ``pid`` (not a child of ours), then SIGKILL after ``timeout``; True once it is gone.

    It is not our child, so it cannot be waited for: its exit is polled."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return True
            time.sleep(0.05)
    return not alive(pid)
