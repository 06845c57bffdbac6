"""The load balancer's config (deploy/nginx.conf) with Debian's nginx: ``nginx -t`` accepts it, and a
real nginx running it carries HTTP, a WebSocket (with the close code on shutdown) and Server-Sent
Events to a real server process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from config import load_settings
from realtime.auth.tokens import TokenService
from tests.deploy import artefacts as a
from tests.servers import AppProcess, free_port, wait_port
from tests.wsclient import WsClient

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
pytestmark = [
    pytest.mark.skipif(
        NGINX is None,
        reason="nginx is missing: `apt-get install -y nginx` (Debian's) checks deploy/nginx.conf",
    ),
    pytest.mark.skipif(
        os.geteuid() != 0, reason="Debian's nginx needs root for its compiled-in paths (/var/lib/nginx)"
    ),
]
COMPOSE_UPSTREAM = re.compile(r"server app\d+:8888")


def local_copy(tmp_path: Path, listen_port: int, app_ports: list[int], text: str | None = None) -> Path:
    """deploy/nginx.conf on this machine: nginx resolves upstream names when it loads its config, and
    compose's service names (app1, app2) resolve only inside compose's network, so they become
    127.0.0.1 ports; the listen port becomes a free one. Nothing else changes."""
    text = a.NGINX_CONF.read_text() if text is None else text
    ports = iter(app_ports)
    text, upstreams = COMPOSE_UPSTREAM.subn(lambda _: f"server 127.0.0.1:{next(ports)}", text)
    assert upstreams == len(app_ports), "the upstream servers changed: update this test"
    text, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{listen_port};", text)
    assert listens == 1
    path = tmp_path / "nginx.conf"
    path.write_text(text)
    return path


def nginx_args(tmp_path: Path, conf: Path, *extra: str, directives: str = "") -> list[str]:
    """nginx on ``conf`` with its prefix and pid file in ``tmp_path`` (one -g: nginx keeps the last)."""
    assert NGINX is not None
    main = f"pid {tmp_path}/nginx.pid; {directives}"
    return [NGINX, "-p", str(tmp_path), "-c", str(conf), "-e", "stderr", "-g", main, *extra]


def nginx_test(tmp_path: Path, conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        nginx_args(tmp_path, conf, "-t", "-q"), capture_output=True, text=True, timeout=30, check=False
    )


def test_nginx_accepts_the_config(tmp_path):
    run = nginx_test(tmp_path, local_copy(tmp_path, free_port(), [8801, 8802]))
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(
    "old,new,complaint",
    [
        ("proxy_buffering off;", "proxy_buffering off", "invalid number of arguments"),
        ("proxy_read_timeout 1h;", "proxy_read_timeout 1hour;", "invalid value"),
        ("least_conn;", "least_connections;", "unknown directive"),
    ],
    ids=["missing-semicolon", "bad-timeout", "unknown-directive"],
)
def test_nginx_refuses_a_broken_copy(tmp_path, old, new, complaint):
    text = a.NGINX_CONF.read_text()
    assert old in text
    run = nginx_test(tmp_path, local_copy(tmp_path, free_port(), [8801, 8802], text.replace(old, new)))
    assert run.returncode != 0 and complaint in run.stderr, run.stderr


API_KEY = secrets.token_urlsafe(32)
JWT_KEYS = "k1:" + secrets.token_urlsafe(32)


@pytest.fixture
def balanced(mongo_server, test_id, tmp_path) -> Iterator[tuple[AppProcess, str]]:
    """A production-mode server process behind nginx running deploy/nginx.conf (both upstream
    entries on that one process); yields the process and the balancer's base URL."""
    app = AppProcess(
        {
            "MODE": "production",
            "JWT_KEYS": JWT_KEYS,
            "API_KEYS": f"lb:{API_KEY}",
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": test_id,
            "DATA_DIR": str(tmp_path / "data"),
            "LOG_LEVEL": "warning",
        }
    )
    app.start()
    port = free_port()
    log = (tmp_path / "nginx.log").open("w")
    nginx = subprocess.Popen(
        nginx_args(tmp_path, local_copy(tmp_path, port, [app.port, app.port]), directives="daemon off;"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port, 15, nginx)
        yield app, f"127.0.0.1:{port}"
    finally:
        nginx.terminate()
        nginx.wait(15)
        log.close()
        app.stop()


def tokens(tmp_path: Path) -> TokenService:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    return TokenService(load_settings({"JWT_KEYS": JWT_KEYS}, toml_path=empty))


async def fetch(url: str, body: Any = None, token: str = API_KEY) -> Any:
    resp = await AsyncHTTPClient().fetch(
        url,
        method="GET" if body is None else "POST",
        body=None if body is None else json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return json.loads(resp.body)


async def read_until(reader: asyncio.StreamReader, marker: bytes, seen: bytearray) -> None:
    while marker not in seen:
        chunk = await asyncio.wait_for(reader.read(4096), 10)
        assert chunk, f"stream ended before {marker!r}: {bytes(seen)!r}"
        seen += chunk


@pytest.mark.gen_test(timeout=90)
async def test_http_websocket_and_sse_pass_through_the_balancer(balanced, tmp_path):
    app, lb = balanced
    assert (await fetch(f"http://{lb}/readyz"))["status"] == "ready"
    token = tokens(tmp_path).issue("u1", role="attendee")

    # WebSocket: the upgrade passes, and the Origin is the app's own because Host keeps its port.
    client = await WsClient.connect(f"ws://{lb}/ws", token)
    await client.subscribe("user:u1")
    await fetch(f"http://{lb}/api/channels/user:u1/messages", {"type": "note", "data": {"n": 1}})
    assert (await client.messages("user:u1", 1))[0]["data"] == {"n": 1}

    # Server-Sent Events: each event arrives while the stream stays open.
    ticket = (await fetch(f"http://{lb}/api/realtime/tickets", {}, token))["ticket"]
    host, port = lb.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET /sse?ticket={ticket}&channel=user:u1 HTTP/1.1\r\nHost: {lb}\r\n\r\n".encode())
    seen = bytearray()
    await read_until(reader, b"event: subscribed", seen)
    assert seen.startswith(b"HTTP/1.1 200")
    await fetch(f"http://{lb}/api/channels/user:u1/messages", {"type": "note", "data": {"n": 2}})
    await read_until(reader, b'"n":2', seen)
    writer.close()

    # SIGTERM: the server closes its WebSockets with 1001, and the client sees it through nginx.
    stopping = asyncio.get_running_loop().run_in_executor(None, app.stop)
    assert (await client.closed()).code == 1001
    assert await stopping == 0
