"""Shared fixtures: one real Redis and one real MongoDB-wire server per test session; every test gets
its own database name and Redis key prefix, and its own app on a fresh IOLoop (pytest-tornado)."""

from __future__ import annotations

import asyncio
import gc
import secrets
import sys
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from config import Settings, load_settings
from tests.servers import TEST_JWT_KEYS, MongoWireServer, RedisServer
from tests.smtpserver import SmtpServer


@pytest.fixture(autouse=True)
def collect_garbage() -> Iterator[None]:
    """Collect after each test (its other fixtures are torn down first), so what a test left open (a
    client socket, a pending task) warns in that test, not in whichever runs when the collector
    next passes."""
    yield
    gc.collect()


@pytest.fixture(autouse=True)
def current_event_loop() -> Iterator[None]:
    """A loop of this test's own as the thread's current one, closed after it. Without it, once an
    ``asyncio.run`` has left none current, Tornado's ``IOLoop()`` (pytest-tornado's ``io_loop``)
    makes one with ``asyncio.get_event_loop()``, restores it when the test ends, and nobody ever
    closes it: its self-pipe warned as an unclosed socket in a later test."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    asyncio.set_event_loop(None)
    loop.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[MongoWireServer]:
    server = MongoWireServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def test_id() -> str:
    return "t" + secrets.token_hex(6)


@pytest.fixture
def make_settings(mongo_server: MongoWireServer, redis_server: RedisServer, test_id: str, tmp_path: Any):
    """Build settings for this test: its own database and key prefix; ``redis=True`` uses Redis."""

    def build(redis: bool = False, **env: str) -> Settings:
        base = {
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": test_id,
            "REDIS_URL": redis_server.url if redis else "",
            "REDIS_PREFIX": f"{test_id}:",
            "DATA_DIR": str(tmp_path / "data"),
            "LOG_LEVEL": "warning",
            "JWT_KEYS": TEST_JWT_KEYS,
        }
        base.update(env)
        empty = tmp_path / "empty.toml"
        empty.write_text("")
        return load_settings(base, toml_path=empty)

    return build


@pytest.fixture
def services_env() -> dict[str, str]:
    """Extra settings for ``services``; a test module overrides this fixture to change them."""
    return {}


class EventLog:
    """A listener of the webinar events (``WebinarEvents``) that keeps what it heard, in order, as
    ``(event, *records)``."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    async def registration_received(self, webinar: Any, registration: Any) -> None:
        self.seen.append(("registration_received", webinar, registration))

    async def registration_decided(self, webinar: Any, registration: Any) -> None:
        self.seen.append(("registration_decided", webinar, registration))

    async def registration_cancelled(self, webinar: Any, registration: Any) -> None:
        self.seen.append(("registration_cancelled", webinar, registration))

    async def webinar_live(self, webinar: Any) -> None:
        self.seen.append(("webinar_live", webinar))

    async def webinar_ended(self, webinar: Any) -> None:
        self.seen.append(("webinar_ended", webinar))

    async def webinar_rescheduled(self, webinar: Any) -> None:
        self.seen.append(("webinar_rescheduled", webinar))

    async def webinar_cancelled(self, webinar: Any) -> None:
        self.seen.append(("webinar_cancelled", webinar))

    async def announcement_made(self, webinar: Any, announcement: Any) -> None:
        self.seen.append(("announcement_made", webinar, announcement))

    async def question_answered(self, webinar: Any, question: Any) -> None:
        self.seen.append(("question_answered", webinar, question))

    async def link_requested(self, webinar: Any, email: Any) -> None:
        self.seen.append(("link_requested", webinar, email))

    def of(self, event: str) -> list[tuple[Any, ...]]:
        """The records of every ``event`` heard, in order."""
        return [entry[1:] for entry in self.seen if entry[0] == event]


@pytest.fixture
def webinar_events() -> EventLog:
    """What the webinar domain told its listeners during this test (``services`` listens with it)."""
    return EventLog()


@pytest.fixture
def services(io_loop, make_settings, services_env, webinar_events):
    """Open services (memory broker) on this test's loop; close them after the test."""
    from server import open_services

    settings = make_settings(**services_env)
    svc = io_loop.run_sync(lambda: open_services(settings, listeners=[webinar_events]))
    yield svc
    io_loop.run_sync(lambda: close_or_report(svc.close(), CLOSE_LIMIT))


CLOSE_LIMIT = 120.0  # far above a close on a busy machine (seconds); only a hang reaches it


async def close_or_report(closing: Coroutine[Any, Any, None], limit: float) -> None:
    """Await ``closing``; if it has not finished within ``limit`` seconds, print the stack of every
    task on the loop (where shutdown waits) and fail, instead of hanging the suite."""
    task = asyncio.ensure_future(closing)
    done, _ = await asyncio.wait({task}, timeout=limit)
    if not done:
        for other in asyncio.all_tasks():
            other.print_stack(file=sys.stderr)
        task.cancel()
        raise TimeoutError(f"services did not close within {limit:.0f} s; task stacks are on stderr")
    task.result()


@pytest.fixture
def app(services):
    from server import make_app

    return make_app(services)


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) on a free port; point a server at it with ``services_env``."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()
