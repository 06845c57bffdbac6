"""A whole app host dies during a broadcast, on the real topology: five hosts (network namespaces,
tests/netns.py) for Redis, the database (SecantusDB), two app processes and nginx running
deploy/nginx.conf; 500 WebSocket clients in the root namespace reach the apps only through nginx.

The app process of one host is killed (SIGKILL) while durable messages are being published through
the balancer. Its clients reconnect through nginx, land on the survivor and resubscribe with
``since``: each one ends with exactly the channel's history, no message lost, none twice. A tenth of
the dead host's clients do not come back (their tab closed with the crash): they leave the room's
presence once ``PRESENCE_TTL`` has passed, while everyone else stays counted.

The same reconnect without a kill (the same clients close and reconnect, during a second broadcast)
is the baseline. Both times are printed (``-s``) and written to test-artifacts/; docs/deploy.md
quotes them. Nothing here asserts a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from config import load_settings
from realtime.auth.tokens import TokenService
from tests import netns
from tests.deploy import artefacts
from tests.servers import ROOT, TEST_JWT_KEYS, AppProcess, redis_server_binary

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
WHY_NOT = netns.unavailable() or (
    None if NGINX else "nginx is missing: `apt-get install -y nginx` (Debian's)"
)
pytestmark = pytest.mark.skipif(WHY_NOT is not None, reason=f"multi-host failover: {WHY_NOT}")

CLIENTS = 500
MESSAGES = 60  # per broadcast
KILL_AFTER = 20  # acknowledged publishes before the kill (and before the baseline's reconnect)
# Lowered from 30 s, not to the least that works: a process refreshes its entries every TTL/3, and
# while it admits 250 clients its loop can lag by seconds, so 3 s let live users expire.
PRESENCE_TTL = 10.0
ROOM = "room:w1"
API_KEY = secrets.token_urlsafe(32)
REDIS_PORT, DB_PORT, APP_PORT, LB_PORT = 6379, 27017, 8888, 80


@dataclass
class Topology:
    lb: str  # the balancer's base URL, the only address clients and the publisher use
    apps: list[AppProcess]
    hosts: dict[str, netns.Host]


def balancer_config(path: Path, listen: str, upstreams: list[str]) -> Path:
    """deploy/nginx.conf with the app hosts' addresses as its upstream servers and ``listen`` as its
    listen address, and a response header naming the upstream that answered (``X-Upstream``), by
    which the test knows each client's host."""
    text = artefacts.NGINX_CONF.read_text()
    servers = iter(upstreams)
    text, n = re.subn(r"server app\d+:8888", lambda _: f"server {next(servers)}", text)
    assert n == len(upstreams), "the upstream servers of deploy/nginx.conf changed: update this test"
    text, n = re.subn(
        r"listen 80;", f"listen {listen};\n        add_header X-Upstream $upstream_addr always;", text
    )
    assert n == 1
    path.write_text(text)
    return path


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    with contextlib.ExitStack() as stack:
        network = stack.enter_context(netns.Network())
        hosts = {role: network.host(role) for role in ("redis", "db", "app1", "app2", "lb")}

        redis = hosts["redis"]
        redis_proc = redis.popen(
            [
                redis_server_binary(),
                "--port",
                str(REDIS_PORT),
                "--bind",
                redis.address,
                "--protected-mode",
                "no",
            ]
            + ["--save", "", "--appendonly", "no", "--dir", str(tmp_path), "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        db = hosts["db"]
        db_log = stack.enter_context((tmp_path / "secantus.log").open("wb"))
        db_proc = db.popen(
            [sys.executable, "-m", "secantus", "--host", db.address, "--port", str(DB_PORT)]
            + ["--storage-path", str(tmp_path / "db"), "--sync-on-commit", "--log-level", "WARNING"],
            stdout=db_log,
            stderr=db_log,
        )
        redis.wait_port(REDIS_PORT, 15, redis_proc)
        db.wait_port(DB_PORT, 60, db_proc)

        apps = []
        for role in ("app1", "app2"):
            host = hosts[role]
            app = AppProcess(
                {
                    "HOST": host.address,
                    "PORT": str(APP_PORT),
                    "MONGODB_URL": f"mongodb://{db.address}:{DB_PORT}/?directConnection=true",
                    "MONGODB_DATABASE": "webinar",
                    "REDIS_URL": f"redis://{redis.address}:{REDIS_PORT}/0",
                    "DATA_DIR": str(tmp_path / role),
                    "API_KEYS": f"crm:{API_KEY}",
                    "PRESENCE_TTL": str(PRESENCE_TTL),
                    "PRESENCE_INTERVAL": "0.5",
                    "PUBLISH_RATE": "0",
                    # every client comes from one address (the root namespace's), through nginx
                    "TRUSTED_PROXIES": f"{hosts['lb'].address}/32",
                    "MAX_UNAUTHENTICATED_PER_ADDRESS": "0",
                    "LOG_LEVEL": "warning",
                }
            )
            app.command_prefix = host.command([])
            stack.callback(app.stop)
            app.start()
            apps.append(app)

        lb = hosts["lb"]
        conf = balancer_config(
            tmp_path / "nginx.conf",
            f"{lb.address}:{LB_PORT}",
            [f"{hosts[r].address}:{APP_PORT}" for r in ("app1", "app2")],
        )
        nginx_log = stack.enter_context((tmp_path / "nginx.log").open("wb"))
        assert NGINX is not None
        nginx = lb.popen(
            [NGINX, "-p", str(tmp_path), "-c", str(conf), "-e", "stderr"]
            + ["-g", f"pid {tmp_path}/nginx.pid; daemon off;"],
            stdout=nginx_log,
            stderr=nginx_log,
        )
        lb.wait_port(LB_PORT, 15, nginx)
        yield Topology(f"{lb.address}:{LB_PORT}", apps, hosts)
    assert not network.leftovers()


@dataclass
class Viewer:
    """One attendee's tab: a WebSocket through the balancer, subscribed to the room; it keeps every
    durable message it is given and, when the connection drops, reconnects and resumes with ``since``
    (unless it ``stays_away`` after a crash)."""

    user: str
    token: str
    lb: str
    stays_away: bool = False
    seqs: list[int] = field(default_factory=list)
    conn: WebSocketClientConnection | None = None
    connects: int = 0
    crashed: bool = False  # its host died under it (not a close of its own)
    gone: bool = False
    target: int | None = None  # the channel's last seq once a broadcast ends
    up: asyncio.Event = field(default_factory=asyncio.Event)
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    back_at: float = 0.0
    host: str = ""  # the app host ("address:port") that holds its connection

    async def connect(self) -> None:
        """Connect, authenticate and subscribe (from the last seq seen), retrying while nothing
        answers; ``up`` is set once the subscription is confirmed."""
        request = HTTPRequest(f"ws://{self.lb}/ws", headers={"Origin": f"http://{self.lb}"})
        for attempt in range(40):
            conn: WebSocketClientConnection | None = None
            try:
                conn = await websocket_connect(request)
                await conn.write_message(json.dumps({"type": "auth", "token": self.token}))
                await self._until(conn, "welcome")
                sub: dict[str, Any] = {"type": "subscribe", "channel": ROOM}
                if self.seqs:
                    sub["since"] = self.seqs[-1]
                await conn.write_message(json.dumps(sub))
                await self._until(conn, "subscribed")
                break
            except (TimeoutError, OSError, ConnectionError, HTTPClientError):
                if conn is not None:
                    conn.close()
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))  # reconnect backoff, as a browser's
        else:
            raise AssertionError(f"{self.user} could not reconnect through the balancer")
        self.conn = conn
        self.host = conn.headers.get("X-Upstream", "").split(",")[-1].strip()  # the last one tried
        self.connects += 1
        self.back_at = time.monotonic()
        self.up.set()

    async def _until(self, conn: WebSocketClientConnection, type_: str) -> None:
        while True:
            # A hang guard only: on a loaded machine 250 subscribes at once take a while, and a
            # client that gave up early would only add its retry to the pile.
            raw = await asyncio.wait_for(conn.read_message(), 120)
            if raw is None:
                raise ConnectionError(f"closed {conn.close_code} before {type_}")
            msg = json.loads(raw)
            if msg["type"] == type_:
                return
            if msg["type"] == "error":
                raise AssertionError(f"{self.user}: {msg}")
            self._take(msg)

    def _take(self, msg: dict[str, Any]) -> None:
        if msg.get("channel") == ROOM and "seq" in msg:
            self.seqs.append(msg["seq"])
            self.check()

    def check(self) -> None:
        if self.target is not None and self.seqs and self.seqs[-1] >= self.target:
            self.caught_up.set()

    async def live(self, admission: asyncio.Semaphore) -> None:
        async with admission:
            await self.connect()
        while True:
            assert self.conn is not None
            while (raw := await self.conn.read_message()) is not None:
                self._take(json.loads(raw))
            self.conn.close()
            self.up.clear()
            if self.gone or (self.crashed and self.stays_away):
                return
            await self.connect()


async def api(lb: str, method: str, path: str, body: Any = None) -> Any:
    response = await AsyncHTTPClient().fetch(
        f"http://{lb}{path}",
        method=method,
        body=None if body is None else json.dumps(body),
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        request_timeout=60,
    )
    return json.loads(response.body)


async def publish_until_accepted(lb: str, phase: str, n: int) -> int:
    """One durable message through the balancer, retried with its idempotency key while the answer
    is lost (502 from a dead upstream) or the first attempt's claim is still held (409)."""
    body = {"type": "broadcast", "data": {"phase": phase, "n": n}, "idempotency_key": f"{phase}-{n}"}
    for attempt in range(200):
        try:
            return int((await api(lb, "POST", f"/api/channels/{ROOM}/messages", body))["seq"])
        except HTTPClientError as error:
            if error.code not in (409, 502, 503, 504, 599):
                raise
        await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
    raise AssertionError(f"publish {phase}-{n} never accepted")


async def broadcast(lb: str, phase: str, midway: asyncio.Event) -> list[int]:
    """``MESSAGES`` publishes one after another; a publish whose answer is lost goes on being retried
    beside the next ones. ``midway`` is set after ``KILL_AFTER`` acknowledgements."""
    retries: list[asyncio.Task[int]] = []
    seqs = []
    for n in range(MESSAGES):
        if n == KILL_AFTER:
            midway.set()
        first = asyncio.ensure_future(publish_until_accepted(lb, phase, n))
        done, _ = await asyncio.wait([first], timeout=5)  # a stuck answer does not hold the rest back
        if done:
            seqs.append(first.result())
        else:
            retries.append(first)
    return seqs + list(await asyncio.gather(*retries))


async def history(lb: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    since = 0
    while True:
        page = await api(lb, "GET", f"/api/channels/{ROOM}/history?since={since}&limit=1000")
        messages += page["messages"]
        if page["next"] is None:
            return messages
        since = page["next"]


async def presence(lb: str) -> tuple[int, set[str]]:
    page = await api(lb, "GET", f"/api/channels/{ROOM}/presence?limit=500")
    return page["count"], {u["user"] for u in page["users"]}


async def presence_reaches(lb: str, count: int, users: set[str] | None = None) -> None:
    """Bounded polling: presence is counted in Redis, and there is no event to await for it."""
    deadline = time.monotonic() + 60
    while True:
        seen, present = await presence(lb)
        if seen == count and (users is None or present == users):
            return
        assert time.monotonic() < deadline, f"presence stayed at {seen}, not {count}"
        await asyncio.sleep(0.2)


async def left_presence(lb: str, users: set[str], since: float) -> float:
    """Seconds from ``since`` (wall clock) to the first roster read, begun after PRESENCE_TTL had
    passed, without any of ``users``; polled, bounded."""
    deadline = time.monotonic() + 120
    while True:
        asked = time.time()
        _, present = await presence(lb)
        if asked > since + PRESENCE_TTL and not present & users:
            return asked - since
        assert time.monotonic() < deadline, f"{len(present & users)} users stayed in presence"
        await asyncio.sleep(0.5)


async def until_all(events: list[asyncio.Event], lives: list[asyncio.Future[Any]], timeout: float) -> None:
    """Until every event is set; a viewer that failed meanwhile fails the wait at once."""
    waiting = asyncio.ensure_future(asyncio.gather(*(e.wait() for e in events)))
    deadline = time.monotonic() + timeout
    try:
        while not waiting.done():
            running = [life for life in lives if not life.done()]
            await asyncio.wait(
                [waiting, *running], timeout=deadline - time.monotonic(), return_when=asyncio.FIRST_COMPLETED
            )
            for life in lives:
                if life.done() and not life.cancelled() and life.exception() is not None:
                    raise life.exception()  # type: ignore[misc]
            set_ = sum(e.is_set() for e in events)
            assert time.monotonic() < deadline, f"{set_} of {len(events)} within {timeout} s"
    finally:
        waiting.cancel()


async def all_caught_up(
    lb: str, viewers: list[Viewer], lives: list[asyncio.Future[Any]]
) -> tuple[list[int], int]:
    """The channel's history (its seqs, and how many publishes it holds twice), once every viewer
    still watching has received up to its end.

    A publish is stored twice when its process dies after storing it and before recording the
    result for its idempotency key: the retry sends again once the claim's lease (30 s) expires.
    That is a known defect (see docs/deploy.md), so it is counted and reported, not asserted."""
    stored = await history(lb)
    seqs = [m["seq"] for m in stored]
    for viewer in viewers:
        viewer.target = seqs[-1]
        viewer.check()
    watching = [v for v in viewers if not (v.crashed and v.stays_away)]
    await until_all([v.caught_up for v in watching], lives, 300)
    for viewer in viewers:
        viewer.caught_up.clear()
        viewer.target = None
    sent = [(m["data"]["phase"], m["data"]["n"]) for m in stored]
    return seqs, len(sent) - len(set(sent))


def tokens() -> TokenService:
    empty = Path(tempfile.mkdtemp()) / "empty.toml"
    empty.write_text("")
    return TokenService(load_settings({"JWT_KEYS": TEST_JWT_KEYS}, toml_path=empty))


@pytest.mark.gen_test(timeout=1500)  # a hang guard: 500 clients, twice reconnecting, on a busy machine
async def test_a_dead_app_host_loses_no_durable_message_and_leaves_presence(topology):
    lb, (doomed, survivor) = topology.lb, topology.apps
    doomed_address = f"{topology.hosts['app1'].address}:{APP_PORT}"
    survivor_address = f"{topology.hosts['app2'].address}:{APP_PORT}"
    issuer = tokens()
    viewers = [
        Viewer(f"u{i}", issuer.issue(f"u{i}", role="attendee", webinar="w1", name=f"u{i}"), lb, i % 10 == 0)
        for i in range(CLIENTS)
    ]
    admission = asyncio.Semaphore(50)  # the first connects arrive as an audience does, not at once
    lives = [asyncio.ensure_future(v.live(admission)) for v in viewers]
    try:
        await until_all([v.up for v in viewers], lives, 600)
        await presence_reaches(lb, CLIENTS)
        assert {v.host for v in viewers} == {doomed_address, survivor_address}

        # The kill: mid-broadcast, the app process of app1 dies; its clients come back on app2.
        midway = asyncio.Event()
        sending = asyncio.ensure_future(broadcast(lb, "kill", midway))
        await midway.wait()
        dropped = [v for v in viewers if v.host == doomed_address]
        for viewer in dropped:
            viewer.crashed = True
            viewer.up.clear()
        returning = [v for v in dropped if not v.stays_away]
        killed_at = time.monotonic()
        killed_wall = time.time()
        doomed.kill()
        away = {v.user for v in dropped if v.stays_away}
        leaving = asyncio.ensure_future(left_presence(lb, away, killed_wall))
        lives.append(leaving)  # cancelled with the viewers if the test fails first
        await until_all([v.up for v in returning], lives, 600)
        assert {v.host for v in returning} == {survivor_address}
        await asyncio.wait_for(
            asyncio.gather(*(lives[viewers.index(v)] for v in dropped if v.stays_away)), 60
        )
        failover = max(v.back_at for v in returning) - killed_at
        acknowledged = await sending
        stored, twice = await all_caught_up(lb, viewers, lives)
        watching = [v for v in viewers if not (v.crashed and v.stays_away)]
        assert set(acknowledged) <= set(stored) and len(set(acknowledged)) == MESSAGES
        for viewer in watching:
            assert viewer.seqs == stored, f"{viewer.user} lost or repeated messages"
        for viewer in viewers:
            assert len(set(viewer.seqs)) == len(viewer.seqs) and viewer.seqs == sorted(viewer.seqs)

        # Presence: the clients that stayed away leave once PRESENCE_TTL has passed; nobody else does.
        left_after = await leaving
        await presence_reaches(lb, CLIENTS - len(away), {v.user for v in watching})

        # The baseline: the same clients close and reconnect themselves, during a second broadcast.
        midway = asyncio.Event()
        sending = asyncio.ensure_future(broadcast(lb, "baseline", midway))
        await midway.wait()
        for viewer in returning:
            viewer.up.clear()
        closed_at = time.monotonic()
        for viewer in returning:
            assert viewer.conn is not None
            viewer.conn.close()
        await until_all([v.up for v in returning], lives, 600)
        baseline = max(v.back_at for v in returning) - closed_at
        await sending
        stored, twice = await all_caught_up(lb, viewers, lives)
        for viewer in watching:
            assert viewer.seqs == stored, f"{viewer.user} lost or repeated messages"
        report(len(dropped), len(returning), failover, baseline, left_after, len(stored), twice)
    finally:
        for viewer in viewers:
            viewer.gone = True
            if viewer.conn is not None:
                viewer.conn.close()
        for life in lives:
            life.cancel()
        await asyncio.gather(*lives, return_exceptions=True)
    assert survivor.proc is not None and survivor.proc.poll() is None


def report(
    dropped: int, returning: int, failover: float, baseline: float, left: float, stored: int, twice: int
) -> None:
    figures = {
        "clients": CLIENTS,
        "on_the_killed_host": dropped,
        "reconnected": returning,
        "failover_seconds": round(failover, 2),
        "baseline_seconds": round(baseline, 2),
        "ratio": round(failover / baseline, 2),
        "presence_left_seconds": round(left, 2),
        "presence_ttl": PRESENCE_TTL,
        "durable_messages": stored,
        "lost": 0,
        "duplicated": 0,
        "publishes_stored_twice": twice,
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print("multi-host failover:", json.dumps(figures))
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    with (out / "multihost-failover.jsonl").open("a") as f:
        f.write(json.dumps(figures) + "\n")
