"""Several worker processes on one port under one supervisor (``WORKERS``), observed from outside
through /proc: which processes exist, hold the listening socket, and which database they use."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.servers import AppProcess
from tests.waiting import wait_until


def children(pid: int) -> dict[int, str]:
    """The live child processes of ``pid``: their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry.name)] = cmdline
    return found


def workers_of(pid: int) -> dict[int, str]:
    return {p: cmd for p, cmd in children(pid).items() if "server.py" in cmd}


def serving_workers(app: AppProcess) -> dict[int, str]:
    """The supervisor's two workers once both serve (a worker that failed to start and was replaced
    on a loaded machine is not waited for)."""

    def check() -> dict[int, str] | None:
        found = workers_of(app.proc.pid)
        out = app.output()
        return found if len(found) == 2 and all(f"(pid {p}); stop with" in out for p in found) else None

    return wait_for(check)


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().partition("=")[::2] for item in raw if b"=" in item)


def listening_inode(port: int) -> str:
    """The inode of the socket listening on ``port`` (from /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
            return fields[9]
    raise AssertionError(f"nothing listens on {port}")


def holds(pid: int, inode: str) -> bool:
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd) == f"socket:[{inode}]":
                return True
        except OSError:
            continue
    return False


def wait_for(predicate, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=5) as resp:
            return json.loads(resp.read())["status"] == "ready"
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def supervised(redis_server, test_id, tmp_path):
    """``server.py --workers 2`` with Redis and the embedded database under ``tmp_path``."""
    app = AppProcess(
        {"MONGODB_URL": "", "REDIS_URL": redis_server.url, "REDIS_PREFIX": test_id + ":"},
    )
    app.env["DATA_DIR"] = str(tmp_path)
    app.start_command = ["--workers", "2"]
    yield app
    app.stop(timeout=60)


def test_two_workers_share_the_port_and_one_embedded_database_and_a_killed_one_comes_back(
    supervised, tmp_path
):
    app = supervised
    app.start()
    supervisor = app.proc.pid
    workers = serving_workers(app)
    assert {environ_of(p)["WORKER_INDEX"] for p in workers} == {"0", "1"}
    assert ready(app.url)

    # one listening socket, held by both workers
    inode = listening_inode(app.port)
    assert all(holds(p, inode) for p in workers)

    # one embedded database, the supervisor's child, that both workers use
    databases = {p: cmd for p, cmd in children(supervisor).items() if "secantus" in cmd}
    assert len(databases) == 1 and str(tmp_path) in next(iter(databases.values()))
    db_port = next(iter(databases.values())).split("--port ")[1].split()[0]
    urls = {environ_of(p)["MONGODB_URL"] for p in workers}
    assert urls == {f"mongodb://127.0.0.1:{db_port}/?directConnection=true"}

    # a worker killed with SIGKILL is replaced in its slot, on the same socket
    victim = next(p for p in workers if environ_of(p)["WORKER_INDEX"] == "0")
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for(lambda: len(w := workers_of(supervisor)) == 2 and victim not in w and w)
    newcomer = next(p for p in replaced if p not in workers)
    assert environ_of(newcomer)["WORKER_INDEX"] == "0"
    assert holds(newcomer, inode)
    wait_for(lambda: f"(pid {newcomer}); stop with" in app.output())
    assert ready(app.url)
    assert f"worker 0 (pid {victim}) exited with signal 9; restarting" in app.output()

    # SIGTERM stops the workers and the database; the supervisor exits 0
    assert app.stop(timeout=60) == 0, app.output()[-3000:]
    assert children(supervisor) == {}


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_stop_when_their_supervisor_is_killed(redis_server, mongo_server, test_id):
    app = AppProcess(
        {
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": test_id,
            "REDIS_URL": redis_server.url,
            "REDIS_PREFIX": test_id + ":",
            "WORKERS": "2",
        }
    )
    app.start()
    try:
        workers = serving_workers(app)
        app.kill()
        wait_for(lambda: not any(alive(p) for p in workers))
        assert app.output().count("the supervisor has gone; stopping") == 2
    finally:
        app.stop()


def connect_refused(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def draining(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/readyz", timeout=5).close()
    except urllib.error.HTTPError as err:
        return err.code == 503 and json.loads(err.read())["error"]["code"] == "draining"
    return False


def test_supervised_workers_drain_on_sigterm_then_the_port_closes(redis_server, mongo_server, test_id):
    """SIGTERM to the supervisor: the workers answer readyz 503 draining while the port still takes
    connections (the supervisor's own copy of the socket is closed, the workers' are not), then the
    port refuses connections, then everything exits 0."""
    app = AppProcess(
        {
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": test_id,
            "REDIS_URL": redis_server.url,
            "REDIS_PREFIX": test_id + ":",
            "WORKERS": "2",
            "DRAIN_SECONDS": "6",
        }
    )
    app.start()
    try:
        workers = serving_workers(app)
        app.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: draining(app.url))
        wait_for(lambda: app.output().count("draining: /readyz answers 503") == 2)
        wait_for(lambda: connect_refused(app.port))
        assert app.proc.wait(60) == 0
        assert not any(alive(p) for p in workers)
    finally:
        app.stop()


def server_children(supervisor: int) -> dict[str, int]:
    """The supervisor's server.py children by role: ``serving`` and ``mail``."""
    found = {}
    for pid in workers_of(supervisor):
        env = environ_of(pid)
        found["mail" if env.get("SERVER_ROLE") == "mail" else "serving"] = pid
    return found


def both_running(app: AppProcess) -> dict[str, int] | None:
    found = server_children(app.proc.pid)
    out = app.output()
    serving, mail = found.get("serving"), found.get("mail")
    if not (serving and mail) or f"mail process running (pid {mail})" not in out:
        return None
    return found if f"(pid {serving}); stop with" in out else None


def owner_pid(job: dict) -> int:
    return int(str(job["lease_owner"]).split("-")[0])


@pytest.mark.gen_test(timeout=240)
async def test_the_mail_process_composes_and_sends_every_mail_and_comes_back_when_killed(
    mongo_server, smtp, test_id, tmp_path, http_client
):
    """``--mail-process`` without Redis: one serving worker on the port, and the mail process beside
    it without the socket; a registration's confirmation is composed (``mail.compose``) and sent
    (``mail.send``) there, never in the serving process, which runs the notification itself; a
    mail process killed with SIGKILL is started again and the next mail goes out."""
    from storage import mongo
    from tests.api import Api

    app = AppProcess(
        {
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": test_id,
            "REDIS_URL": "",
            "SMTP_URL": smtp.url,
            "DATA_DIR": str(tmp_path),
            "WORKER_POLL_INTERVAL": "0.05",
            "LOG_LEVEL": "info",
        }
    )
    app.start_command = ["--mail-process"]
    app.start()
    client = mongo.open_client(mongo_server.url)
    try:
        found = wait_for(lambda: both_running(app))
        serving, mail = found["serving"], found["mail"]
        assert environ_of(mail)["WORKER_INDEX"] == "1" and "LISTEN_FDS" not in environ_of(mail)
        inode = listening_inode(app.port)
        assert holds(serving, inode) and not holds(mail, inode)
        assert ready(app.url)

        api = Api(http_client, app.url)
        host = await api.host()
        webinar = await api.webinar(host["access_token"])
        reg = await api.register(webinar["id"], "Ada", "ada@example.com")
        [message] = await smtp.wait_for(1)
        assert message["To"].endswith("<ada@example.com>") or message["To"] == "ada@example.com"
        assert reg["join_url"].split("#")[0] in message.get_body(("plain",)).get_content()

        jobs = client[test_id].jobs
        unfinished = {"status": {"$in": ["queued", "running"]}, "kind": {"$regex": "^mail[.]"}}

        async def mail_jobs_done() -> bool:  # the send job marks its mail after the server's 250
            sent = await jobs.find_one({"kind": "mail.send", "status": "done"})
            return bool(sent) and not await jobs.find_one(unfinished)

        await wait_until(mail_jobs_done, timeout=60)
        ran = [j async for j in jobs.find({"status": "done"})]
        by_kind: dict[str, set[int]] = {}
        for job in ran:
            by_kind.setdefault(job["kind"], set()).add(owner_pid(job))
        assert by_kind["mail.compose"] == {mail} and by_kind["mail.send"] == {mail}, by_kind
        others = {k: pids for k, pids in by_kind.items() if not k.startswith("mail.")}
        assert all(pids == {serving} for pids in others.values()), by_kind

        os.kill(mail, signal.SIGKILL)
        again = wait_for(lambda: (f := both_running(app)) and f["mail"] != mail and f)
        assert again["serving"] == serving and environ_of(again["mail"])["WORKER_INDEX"] == "1"
        await api.register(webinar["id"], "Bo", "bo@example.com")
        try:
            await smtp.wait_for(2)
        except TimeoutError:
            left = [j async for j in jobs.find({"status": {"$ne": "done"}})]
            raise AssertionError(f"jobs not done: {left}\n{app.output()[-6000:]}") from None
        assert len(smtp.to("bo@example.com")) == 1 and len(smtp.to("ada@example.com")) == 1
        assert f"worker 1 (pid {mail}) exited with signal 9; restarting" in app.output()

        assert app.stop(timeout=60) == 0, app.output()[-3000:]
    finally:
        app.stop(timeout=60)
        await client.close()
