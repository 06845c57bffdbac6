"""End-to-end fixtures: the app as a child process on the session's Redis and MongoDB-wire servers,
and Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ROOT, AppProcess, MongoWireServer, RedisServer

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


class HttpApi:
    """Setup calls against the running app over plain HTTP (the browser does the real work)."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else (b"" if method != "GET" else None)
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback test server
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def host(self) -> dict[str, Any]:
        email = f"host-{secrets.token_hex(4)}@example.com"
        code, body = self.call(
            "POST",
            "/api/auth/signup",
            {"email": email, "password": "correct horse battery", "name": "Hanna Host"},
        )
        assert code == 201, body
        body["email"] = email
        body["password"] = "correct horse battery"
        return body

    def webinar(self, token: str, **fields: Any) -> dict[str, Any]:
        starts = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        body = {
            "title": "Launch day",
            "starts_at": starts,
            "timezone": "UTC",
            "duration_minutes": 60,
            **fields,
        }
        code, doc = self.call("POST", "/api/webinars", body, token)
        assert code == 201, doc
        return doc

    def register(self, webinar_id: str, name: str) -> dict[str, Any]:
        email = f"{name.lower().replace(' ', '.')}-{secrets.token_hex(3)}@example.com"
        code, reg = self.call(
            "POST", f"/api/webinars/{webinar_id}/registrations", {"name": name, "email": email}
        )
        assert code == 201, reg
        return reg

    def go_live(self, token: str, webinar_id: str) -> None:
        code, body = self.call("POST", f"/api/webinars/{webinar_id}/live", {}, token)
        assert code == 200, body


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.fail("Chromium is missing: `make test` installs it (apt-get install chromium)")
    return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))


def app_process(
    mongo_server: MongoWireServer, redis_server: RedisServer, tmp_path_factory: Any, **env: str
) -> Iterator[AppProcess]:
    """The app as a child process on its own database and key prefix; ``env`` adds or overrides
    settings (a module that needs other settings defines its own ``app`` fixture with it)."""
    name = "b" + secrets.token_hex(6)
    server = AppProcess(
        {
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": name,
            "REDIS_URL": redis_server.url,
            "REDIS_PREFIX": f"{name}:",
            "DATA_DIR": str(tmp_path_factory.mktemp("browser-data")),
            "LOG_LEVEL": "warning",
            "PRESENCE_INTERVAL": "0.2",
            "CHAT_RATE": "100",
            "SLOW_MODE": "0",
            "WORKER_POLL_INTERVAL": "0.1",
            **env,
        }
    )
    server.start()
    yield server
    try:
        code = server.stop(timeout=30)
    finally:
        server.logfile.close()
    assert code == 0, f"the app exited with {code} on SIGTERM"


@pytest.fixture(scope="module")
def app(
    mongo_server: MongoWireServer, redis_server: RedisServer, tmp_path_factory: Any
) -> Iterator[AppProcess]:
    yield from app_process(mongo_server, redis_server, tmp_path_factory)


@pytest.fixture
def http(app: AppProcess) -> HttpApi:
    return HttpApi(app.url)


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an event loop running in this thread
    # until it stops, and the pytest-tornado tests that follow need to run their own.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def contexts(browser: Any, app: AppProcess) -> Iterator[Any]:
    """``contexts(viewport)``: a new isolated browser context (its own storage, cookies, network)."""
    from playwright.sync_api import expect

    made: list[Any] = []

    def new(viewport: dict[str, int] = DESKTOP) -> Any:
        context = browser.new_context(base_url=app.url, viewport=viewport)
        context.set_default_timeout(10_000)
        # Assertions wait as long as actions: a hang guard for a busy machine (a reload's resume of
        # the session took over Playwright's 5 s default with a whole suite running beside it).
        expect.set_options(timeout=15_000)
        made.append(context)
        return context

    yield new
    for context in made:
        context.close()


@pytest.fixture
def page_errors() -> Iterator[list[str]]:
    """Collects uncaught page errors and CSP violations; the test fails if any were seen."""
    errors: list[str] = []
    yield errors
    assert not errors, errors


def watch(page: Any, errors: list[str]) -> Any:
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    page.on(
        "console",
        lambda msg: (
            errors.append(f"{page.url}: {msg.text}")
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    return page


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
