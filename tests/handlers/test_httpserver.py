"""The HTTP server in front of the app, run as a real server process: forwarding headers are believed
from TRUSTED_PROXIES only, so the client address in logs and rate limits cannot be chosen by the client."""

from __future__ import annotations

import ipaddress
import json
import select
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from tornado.httputil import HTTPHeaders

from handlers.httpserver import TrustedProxies
from tests.servers import AppProcess


@pytest.fixture
def start_app(mongo_server, test_id, tmp_path) -> Iterator[Callable[..., AppProcess]]:
    started: list[AppProcess] = []

    def start(**env: str) -> AppProcess:
        app = AppProcess(
            {
                "MONGODB_URL": mongo_server.url,
                "MONGODB_DATABASE": f"{test_id}{len(started)}",
                "DATA_DIR": str(tmp_path / f"data{len(started)}"),
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "info",
                **env,
            }
        )
        started.append(app)
        app.start()
        return app

    yield start
    for app in started:
        app.stop()
        app.logfile.close()


def post(url: str, body: dict, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def login_codes(app: AppProcess, attempts: int) -> list[int]:
    """Wrong-password logins for one email, each claiming another address in X-Forwarded-For."""
    wrong = {"email": "victim@example.com", "password": "guess guess"}
    return [
        post(
            app.url + "/api/auth/login",
            wrong,
            {"X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": f"198.51.100.{i}"},
        )
        for i in range(attempts)
    ]


def access_ips(app: AppProcess, path: str, count: int) -> list[str]:
    """The client address of the access log lines for ``path``, once ``count`` are written (the server
    logs a request after answering it)."""
    deadline = time.monotonic() + 20
    while True:
        lines = [json.loads(line) for line in app.output().splitlines() if line.startswith("{")]
        ips = [e["remote_ip"] for e in lines if e.get("logger") == "access" and e.get("path") == path]
        if len(ips) >= count or time.monotonic() > deadline:
            return ips
        time.sleep(0.05)


def test_forwarding_headers_from_an_untrusted_peer_are_ignored(start_app):
    """Rotating X-Forwarded-For no longer escapes the login rate limit, nor forges the logged address."""
    app = start_app(LOGIN_RATE="3")
    codes = login_codes(app, 4)
    assert codes == [401, 401, 401, 429]
    assert access_ips(app, "/api/auth/login", 4) == ["127.0.0.1"] * 4


def test_forwarding_headers_from_a_trusted_proxy_name_the_client(start_app):
    app = start_app(LOGIN_RATE="3", TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.0/8")
    codes = login_codes(app, 4)
    assert codes == [401, 401, 401, 401]  # four clients, one attempt each
    assert access_ips(app, "/api/auth/login", 4) == [f"203.0.113.{i}" for i in range(4)]


def headers(**given: str) -> HTTPHeaders:
    return HTTPHeaders({k.replace("_", "-"): v for k, v in given.items()})


def test_the_client_is_the_rightmost_untrusted_hop():
    assert TrustedProxies(()).client("192.0.2.9", headers(X_Forwarded_For="1.1.1.1")) == "192.0.2.9"
    proxies = TrustedProxies([ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")])
    # forged left part, then the address the outer proxy saw, then an inner proxy
    chain = headers(X_Forwarded_For="6.6.6.6, 203.0.113.5, 10.1.2.3")
    assert proxies.client("10.0.0.1", chain) == "203.0.113.5"
    assert proxies.client("fd00::1", headers(X_Forwarded_For="2001:db8::7")) == "2001:db8::7"
    assert proxies.client("10.0.0.1", headers(X_Real_IP="203.0.113.8")) == "203.0.113.8"
    assert proxies.client("10.0.0.1", headers(X_Forwarded_For="junk, 10.9.9.9")) == "10.9.9.9"
    assert proxies.client("10.0.0.1", headers(X_Forwarded_For="10.2.2.2, 10.3.3.3")) == "10.2.2.2"
    assert proxies.client("10.0.0.1", headers(X_Real_IP="not an address")) == "10.0.0.1"
    assert proxies.client("10.0.0.1", headers()) == "10.0.0.1"
    assert proxies.scheme("10.0.0.1", headers(X_Forwarded_Proto="https"), "http") == "https"
    assert proxies.scheme("10.0.0.1", headers(X_Forwarded_Proto="gopher"), "http") == "http"
    assert proxies.scheme("192.0.2.9", headers(X_Forwarded_Proto="https"), "http") == "http"


def dribble_until_closed(sock: socket.socket, payload: bytes, deadline: float = 30.0) -> bool:
    """Send ``payload`` a byte at a time, each after waiting up to 0.2 s for the server to close the
    connection; True once it has (well before ``deadline`` when the server times slow clients out)."""
    end = time.monotonic() + deadline
    i = 0
    while time.monotonic() < end:
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            try:
                if sock.recv(4096) == b"":
                    return True
            except ConnectionResetError:
                return True
            continue
        if i < len(payload):
            try:
                sock.sendall(payload[i : i + 1])
            except (BrokenPipeError, ConnectionResetError):
                return True
            i += 1
    return False


def test_clients_that_never_finish_headers_or_body_are_closed(start_app):
    app = start_app(HTTP_IDLE_TIMEOUT="1", HTTP_BODY_TIMEOUT="1")
    endless_headers = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 10_000
    endless_body = (
        b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    socks = [socket.create_connection(("127.0.0.1", app.port)) for _ in range(10)]
    try:
        for sock in socks[:5]:
            sock.sendall(endless_headers[:40])
        for sock in socks[5:]:
            sock.sendall(endless_body)
        closed = [dribble_until_closed(sock, endless_headers[40:] if i < 5 else b"{" * 10_000) for i, sock in
                  enumerate(socks)]  # fmt: skip
        assert closed == [True] * 10
        silent = socket.create_connection(("127.0.0.1", app.port))
        assert dribble_until_closed(silent, b"")  # says nothing at all
        silent.close()
        with urllib.request.urlopen(app.url + "/healthz", timeout=10) as resp:  # others are served
            assert resp.status == 200
    finally:
        for sock in socks:
            sock.close()
