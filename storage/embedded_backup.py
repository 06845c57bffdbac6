"""Backup and restore of the embedded database, with SecantusDB's own tools (run, never imported).

- :func:`backup` asks the running SecantusDB for ``secantusAdmin.backupArchive``: it forces a
  checkpoint and writes the files of that consistent snapshot (WiredTiger's backup cursor) into one
  ``.tar.gz``, while the server keeps serving. The archive is written by the database process, so
  the path must be writable by it (the embedded database runs on the same host, as the same user).
- :func:`restore` unpacks an archive into the storage directory with ``secantus.restore_cli``. It
  runs only while no process uses the directory; what was there is moved aside, never deleted.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

from storage import embedded_process, mongo


def archive_path(output: Path) -> Path:
    """``output`` made absolute (the database process writes it), its folder created; refused if
    it exists (a backup never overwrites another)."""
    output = output.resolve()
    if output.exists():
        raise FileExistsError(f"{output} exists; choose a new file name")
    output.parent.mkdir(parents=True, exist_ok=True)
    return output


async def backup(url: str, output: Path) -> int:
    """Write a consistent archive of the database at ``url`` to ``output`` (from
    :func:`archive_path`); its size in bytes."""
    client = mongo.open_client(url)
    try:
        reply = await client.admin.command({"secantusAdmin.backupArchive": 1, "outputPath": str(output)})
    finally:
        await client.close()
    return int(reply["sizeBytes"])


def restore(archive: Path, storage_path: Path) -> Path | None:
    """Unpack ``archive`` as ``storage_path``; the earlier directory's new name (None if there was none).

    Raises ``RuntimeError`` while a process runs the database there, or when the archive is refused."""
    archive = archive.resolve()
    if not archive.is_file():
        raise FileNotFoundError(f"{archive} does not exist")
    running = embedded_process.find_running(storage_path)
    if running is not None:
        raise RuntimeError(
            f"the embedded database in {storage_path} is running (pid {running.pid}); stop the server first"
        )
    aside = None
    if storage_path.exists() and any(storage_path.iterdir()):
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        aside = storage_path.with_name(f"{storage_path.name}.before-restore-{stamp}")
        storage_path.rename(aside)
    unpack = [sys.executable, "-m", "secantus.restore_cli", "--archive", str(archive)]
    done = subprocess.run([*unpack, "--target-dir", str(storage_path)], capture_output=True, text=True)
    if done.returncode != 0:
        if aside is not None:  # put the earlier database back, over what a failed unpack left
            if storage_path.exists():
                shutil.rmtree(storage_path)
            aside.rename(storage_path)
        raise RuntimeError(f"restore refused: {done.stderr.strip()}")
    return aside
