"""Shared fixtures: one real Redis and one real MongoDB-wire server per test session; every test gets
its own database name and Redis key prefix, and its own app on a fresh IOLoop (pytest-tornado)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from config import Settings, load_settings
from tests.servers import MongoWireServer, RedisServer


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


@pytest.fixture
def services(io_loop, make_settings, services_env):
    """Open services (memory broker) on this test's loop; close them after the test."""
    from server import open_services

    settings = make_settings(**services_env)
    svc = io_loop.run_sync(lambda: open_services(settings))
    yield svc
    io_loop.run_sync(svc.close)


@pytest.fixture
def app(services):
    from server import make_app

    return make_app(services)
