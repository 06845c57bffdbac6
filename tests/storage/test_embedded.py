"""The embedded database's lifecycle with real processes: it dies with its server (``kill -9``
included), a failed start leaves nothing behind, and a start deals with what a crash left."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import AppProcess, free_port, wait_port


def secantus_on(path: Path) -> list[int]:
    """Pids of live SecantusDB processes whose storage directory is ``path`` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().decode().split("\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        on_path = any(arg.startswith(str(path)) for arg in args)
        if "secantus" in args and on_path and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_database_left(tmp_path):
    """Whatever a failing test left running on its directory is stopped (it would outlive the suite)."""
    yield
    for pid in secantus_on(tmp_path):
        os.kill(pid, 9)


def wait_until(check, timeout: float = 60.0) -> bool:
    """Poll ``check`` until it is true; generous limit, only a failure reaches it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def embedded_app(data_dir: Path, **env: str) -> AppProcess:
    return AppProcess({"DATA_DIR": str(data_dir), "MONGODB_URL": "", "REDIS_URL": "", **env})


def spawn_orphan(path: Path, port: int) -> int:
    """A SecantusDB on ``path`` whose starting process is gone (``sh`` backgrounds it and exits),
    as a server on a system without a parent-death signal leaves it; returns its pid."""
    log = path.parent / "orphan.log"
    script = (
        f"{sys.executable} -m secantus --port {port} --storage-path {path} --log-level WARNING "
        f">{log} 2>&1 </dev/null & echo $!"
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, timeout=30)
    pid = int(out.stdout.strip())
    wait_port(port, 60)
    return pid


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_kill_9_of_the_server_takes_the_embedded_database_with_it(tmp_path):
    app = embedded_app(tmp_path)
    app.start()
    children = secantus_on(tmp_path / "mongo")
    assert len(children) == 1
    app.kill()
    assert wait_until(lambda: not secantus_on(tmp_path / "mongo")), "the database outlived its server"
    again = embedded_app(tmp_path)
    again.start()
    try:
        assert len(secantus_on(tmp_path / "mongo")) == 1
    finally:
        assert again.stop() == 0
    assert wait_until(lambda: not secantus_on(tmp_path / "mongo"))


@pytest.mark.parametrize("bad", ["port in use", "unknown host"])
def test_a_failed_listen_leaves_no_database_behind(tmp_path, bad):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        listen = {"PORT": str(busy.getsockname()[1])} if bad == "port in use" else {"HOST": "999.1.1.1"}
        app = embedded_app(tmp_path, **listen)
        app.port = free_port()  # never listens: start() must see the process exit instead
        with pytest.raises(RuntimeError):
            app.start()
    assert app.proc is not None and app.proc.wait(60) != 0
    assert wait_until(lambda: not secantus_on(tmp_path / "mongo")), "the failed start left a database"


def test_a_start_stops_an_orphan_its_dead_server_recorded(tmp_path, caplog):
    from storage.embedded import EmbeddedMongo
    from storage.mongo import open_client

    path = tmp_path / "mongo"
    path.mkdir()
    orphan = spawn_orphan(path, free_port())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    state = {"pid": orphan, "url": "", "storage_path": str(path), "owner": int(dead.stdout)}
    (tmp_path / "mongo.json").write_text(json.dumps(state))

    async def use() -> dict[str, object] | None:
        server = EmbeddedMongo(path)
        await server.start()
        client = open_client(server.url)
        try:
            await client.db.kept.insert_one({"_id": 1})
            return await client.db.kept.find_one({"_id": 1})
        finally:
            await client.close()
            await server.stop()

    with caplog.at_level("WARNING", logger="storage.embedded"):
        assert asyncio.run(use()) == {"_id": 1}
    assert f"stopping an orphaned embedded database (pid {orphan}" in caplog.text
    assert not secantus_on(path)
    assert not (tmp_path / "mongo.json").exists()


def test_a_start_refuses_a_database_another_live_process_runs(tmp_path):
    from storage.embedded import EmbeddedInUse, EmbeddedMongo

    path = tmp_path / "mongo"
    port = free_port()
    other = subprocess.Popen(
        [sys.executable, "-m", "secantus", "--port", str(port), "--storage-path", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, 60, other)
        with pytest.raises(EmbeddedInUse) as refused:
            asyncio.run(EmbeddedMongo(path).start())
        message = str(refused.value)
        assert f"pid {other.pid}" in message and f"started by pid {os.getpid()}" in message
        assert "\n" not in message
        assert other.poll() is None, "a live process's database must not be stopped"
    finally:
        other.terminate()
        other.wait(30)


def test_a_second_server_on_the_same_directory_refuses_in_one_line(tmp_path):
    first = embedded_app(tmp_path)
    first.start()
    try:
        second = embedded_app(tmp_path)
        with pytest.raises(RuntimeError):
            second.start()
        assert second.proc is not None and second.proc.wait(60) == 1
        last = second.output().strip().splitlines()[-1]
        assert "already running at mongodb://127.0.0.1:" in last and "MONGODB_URL" in last
        assert len(secantus_on(tmp_path / "mongo")) == 1
    finally:
        assert first.stop() == 0
