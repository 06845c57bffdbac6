"""A reminder to N registrants, end to end to a local SMTP server, with a live room on the same process.

    .venv/bin/python -m bench.mail_reminder [--recipients 10000] [--idle 10]

Starts its own SecantusDB and an SMTP sink (``python -m aiosmtpd -c aiosmtpd.handlers.Sink``, a child
process: it accepts and discards), then in this process the whole server (``open_services`` +
``make_app`` on a free port, ``SMTP_URL`` pointing at the sink). Seeds a webinar with N approved
registrants (users with addresses), connects ``--watchers`` WebSocket clients to its room and
broadcasts a small ephemeral message to the room every 50 ms through ``Hub.publish``; a message's
latency is its receive time minus the send time written into it (one clock: same process).

Phase 1, idle: broadcasts only, ``--idle`` seconds. Phase 2: the reminder job is made due and runs
through the real path (reminder -> notify in chunks of 1,000 -> compose -> store -> ``mail.send``
jobs -> SMTP); the phase ends when every message is ``sent`` (accepted by the SMTP server with 250).
Prints one line of JSON: mails/s, seconds to the last acceptance, and the room broadcast p50/p99/max
idle and during the mail.

``--mail-process``: as ``MAIL_PROCESS`` does, the mail is composed and sent by a process of its own
(``server.py`` with ``SERVER_ROLE=mail``, a child of this one on the same database and data
directory), and this process, the room's, only runs the reminder's notification; that child's CPU
is counted as ``mail_process``. ``--pin``: this process (the room's) alone on core 0, the database,
the sink and the mail process on core 1, as if the database ran on a host of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import tornado.httpserver
from prometheus_client import generate_latest

from bench import pauses
from config import load_settings
from realtime import metrics
from realtime.engine.channels import room
from realtime.notifications.mail import JOB_KIND as MAIL_JOB
from realtime.notifications.mail_compose import COMPOSE_JOB
from realtime.notifications.notifier import FANOUT_JOB
from realtime.notifications.triggers import REMINDER_JOB
from server import make_app, open_services, tune_collector
from tests.servers import MongoWireServer, free_port, wait_port
from tests.wsclient import Closed, WsClient

# The jobs of the reminder's path; others (the hourly retention job) are not waited for.
MAIL_PATH_JOBS = (REMINDER_JOB, FANOUT_JOB, COMPOSE_JOB, MAIL_JOB)
SERVER = Path(__file__).resolve().parent.parent / "server.py"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


ROOM_CORE, OTHERS_CORE = 0, 1  # --pin: the room's process alone on one core, the rest on the other


def start_mail_process(env: dict[str, str], pin: bool = False) -> subprocess.Popen[bytes]:
    """``server.py`` as the mail process; returns once it runs its worker."""
    log = tempfile.NamedTemporaryFile(prefix="mail-process-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, str(SERVER)],
        env={**os.environ, **env, "SERVER_ROLE": "mail", "WORKER_INDEX": "1", "LOG_LEVEL": "info"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    if pin:
        os.sched_setaffinity(proc.pid, {OTHERS_CORE})
    deadline = time.monotonic() + 60
    while "mail process running" not in Path(log.name).read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the mail process did not start: " + Path(log.name).read_text()[-2000:])
        time.sleep(0.1)
    return proc


async def run(
    recipients: int,
    idle: float,
    watchers: int,
    mongo_url: str,
    smtp_url: str,
    pids: dict[str, int],
    mail_process: bool = False,
    pin: bool = False,
) -> dict[str, Any]:
    name = "mailbench" + secrets.token_hex(4)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    (data_dir / "empty.toml").write_text("")
    port = free_port()
    env = {
        "MONGODB_URL": mongo_url,
        "MONGODB_DATABASE": name,
        "DATA_DIR": str(data_dir),
        "PORT": str(port),
        "SMTP_URL": smtp_url,
        "LOG_LEVEL": "warning",
        "REMINDER_OFFSETS": "15",
    }
    settings = load_settings(env, toml_path=data_dir / "empty.toml")
    services = await open_services(settings, role="serving" if mail_process else "all")
    server = tornado.httpserver.HTTPServer(make_app(services))
    server.listen(port, "127.0.0.1")
    tune_collector()  # as server.serve does once started
    mailer = None
    if mail_process:
        mailer = start_mail_process(
            {**env, "CONFIG_FILE": str(data_dir / "empty.toml"), "METRICS_PORT": ""}, pin
        )
    if mailer is not None:
        pids = {**pids, "mail_process": mailer.pid}
    try:
        db = services.db
        starts = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=30)
        doc = await services.domain.webinars.webinars.create(
            "host",
            {
                "title": "Bench webinar",
                "starts_at": starts,
                "timezone": "Europe/Berlin",
                "duration_minutes": 60,
            },
        )
        await db.webinars.update_one({"_id": doc["_id"]}, {"$set": {"_id": doc["_id"]}})
        wid = doc["_id"]
        for start in range(0, recipients, 5000):
            n_range = range(start, min(recipients, start + 5000))
            await db.users.insert_many(
                [
                    {"_id": f"u{n}", "email": f"u{n}@bench.example", "name": f"User {n}", "role": "attendee"}
                    for n in n_range
                ]
            )
            await db.registrations.insert_many(
                [
                    {
                        "_id": f"r{n}",
                        "webinar_id": wid,
                        "user_id": f"u{n}",
                        "email": f"u{n}@bench.example",
                        "name": f"User {n}",
                        "status": "approved",
                        "timezone": "America/New_York",
                        "created_at": starts,
                    }
                    for n in n_range
                ]
            )

        latencies: list[tuple[float, float]] = []  # (received at, latency ms)
        clients = []
        for n in range(watchers):
            token = services.tokens.issue(f"u{n}", role="attendee", name=f"User {n}", webinar=wid, ttl=3600)
            client = await WsClient.connect(f"http://127.0.0.1:{port}", token)
            answer = await client.subscribe(room(wid))
            assert answer["type"] == "subscribed", answer
            clients.append(client)

        async def watch(client: WsClient) -> None:
            while True:
                try:
                    msg = await client.recv(timeout=3600)
                except Closed:
                    return  # the server is shutting down at the end
                if msg.get("type") == "bench.tick":
                    now = time.perf_counter_ns()
                    latencies.append((time.perf_counter(), (now - msg["data"]["t"]) / 1e6))

        async def broadcast() -> None:
            while True:
                await services.hub.publish(
                    room(wid), "bench.tick", {"t": time.perf_counter_ns()}, durable=False
                )
                await asyncio.sleep(0.05)

        tasks = [asyncio.create_task(watch(c)) for c in clients] + [asyncio.create_task(broadcast())]
        t_idle = time.perf_counter()
        await asyncio.sleep(idle)
        t_mail = time.perf_counter()
        cpu0 = {name: cpu_seconds(pid) for name, pid in {"app": os.getpid(), **pids}.items()}
        lags_before = pauses.parse(generate_latest(metrics.REGISTRY).decode())  # the room's process
        services.pauses.longest_lag = 0.0
        services.notifications.worker.wake()
        webinar = await db.webinars.find_one({"_id": wid})
        from realtime.webinars.records import Webinar

        await services.notifications.triggers.schedule_reminders(Webinar.from_doc(webinar))
        await db.jobs.update_many({"kind": "reminder"}, {"$set": {"run_at": dt.datetime.now(dt.UTC)}})
        services.notifications.worker.wake()
        # Done when no reminder, fan-out or mail job is left to run (an indexed query on the small jobs
        # collection, once a second: counting the mail collection itself would load the database).
        deadline = t_mail + 900
        await asyncio.sleep(1)
        while time.perf_counter() < deadline:
            pending = await db.jobs.count_documents(
                {"status": {"$in": ["queued", "running"]}, "kind": {"$in": list(MAIL_PATH_JOBS)}}
            )
            if pending == 0:
                break
            await asyncio.sleep(1)
        sent = await db.mail.count_documents({"status": "sent"})
        last = await db.mail.find_one({"status": "sent"}, sort=[("sent_at", -1)])
        first_queued = await db.mail.find_one({}, sort=[("created_at", 1)])
        t_done = time.perf_counter()
        cpu = {
            name: round(cpu_seconds(pid) - cpu0[name], 2)
            for name, pid in {"app": os.getpid(), **pids}.items()
        }
        load = os.getloadavg()[0]
        lags = pauses.summary([lags_before], [pauses.parse(generate_latest(metrics.REGISTRY).decode())])
        lags["longest_loop_lag_ms"] = round(services.pauses.longest_lag * 1000, 1)
        for task in tasks:
            task.cancel()
        idle_ms = [ms for at, ms in latencies if t_idle + 1 <= at < t_mail]
        busy_ms = [ms for at, ms in latencies if t_mail <= at < t_done]
        seconds = t_done - t_mail
        wall = (
            (last["sent_at"] - first_queued["created_at"]).total_seconds() if last and first_queued else None
        )
        other = {
            s: await db.mail.count_documents({"status": s}) for s in ("queued", "failed", "undeliverable")
        }
        return {
            "recipients": recipients,
            "sent": sent,
            "other_statuses": other,
            "seconds_to_all_sent": round(seconds, 2),
            "mails_per_second": round(sent / seconds, 1),
            "first_stored_to_last_accepted_s": round(wall, 2) if wall is not None else None,
            "room_idle_ms": {
                "n": len(idle_ms),
                "p50": round(statistics.median(idle_ms), 2) if idle_ms else None,
                "p99": round(percentile(idle_ms, 0.99), 2),
                "max": round(max(idle_ms, default=0), 2),
            },
            "room_during_mail_ms": {
                "n": len(busy_ms),
                "p50": round(statistics.median(busy_ms), 2) if busy_ms else None,
                "p99": round(percentile(busy_ms, 0.99), 2),
                "max": round(max(busy_ms, default=0), 2),
            },
            "smtp_concurrency": settings.smtp_concurrency,
            "cpu_seconds_during_mail": cpu,
            "app_cpu_ms_per_mail": round(1000 * cpu["app"] / max(sent, 1), 2),
            "load_average_1m": round(load, 1),
            "mail_process": mail_process,
            "pinned": (
                f"room's process on core {ROOM_CORE}; database, sink and mail process on core {OTHERS_CORE}"
                if pin
                else "not pinned"
            ),
            "room_process_pauses_during_mail": lags,
        }
    finally:
        if mailer is not None:
            mailer.terminate()
            mailer.wait(60)
        server.stop()
        await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--watchers", type=int, default=20)
    parser.add_argument("--mail-process", action="store_true", help="mail sent by its own process")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the room's process alone on core 0, the rest on core 1 (the database as on a host of its own)",
    )
    args = parser.parse_args()
    if args.pin and not {ROOM_CORE, OTHERS_CORE} <= os.sched_getaffinity(0):
        parser.error(f"--pin needs cores {ROOM_CORE} and {OTHERS_CORE}")
    mongo = MongoWireServer()
    mongo.start()
    smtp_port = free_port()
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{smtp_port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(smtp_port, 30, sink)
        pids = {"smtp_sink": sink.pid, "mongodb": mongo.proc.pid if mongo.proc else 0}
        if args.pin:
            for pid in pids.values():
                os.sched_setaffinity(pid, {OTHERS_CORE})
            os.sched_setaffinity(0, {ROOM_CORE})
        smtp_url = f"smtp://127.0.0.1:{smtp_port}"
        result = asyncio.run(
            run(
                args.recipients,
                args.idle,
                args.watchers,
                mongo.url,
                smtp_url,
                pids,
                args.mail_process,
                args.pin,
            )
        )
        print(json.dumps(result))
    finally:
        sink.terminate()
        sink.wait(10)
        mongo.close()


if __name__ == "__main__":
    main()
