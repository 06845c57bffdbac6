"""Opening the MongoDB database and creating every index, idempotently, at start-up."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger("storage.mongo")

Doc = dict[str, Any]
Database = AsyncDatabase[Doc]
IndexCreator = Callable[[Database], Awaitable[None]]


DEFAULT_TIMEOUT = 3.0  # seconds; the MONGODB_TIMEOUT setting


def open_client(url: str, timeout: float = DEFAULT_TIMEOUT, **options: Any) -> AsyncMongoClient[Doc]:
    """A client for ``url``; call inside the running loop it will be used on, close it on shutdown.

    ``timeout`` bounds how long an operation waits for a server it cannot reach (server selection,
    connecting); then PyMongo raises, and ``storage.errors.outage`` makes that ``unavailable``."""
    options.setdefault("serverSelectionTimeoutMS", int(timeout * 1000))
    options.setdefault("connectTimeoutMS", int(timeout * 1000))
    options.setdefault("tz_aware", True)
    return AsyncMongoClient(url, **options)


async def ensure_indexes(db: Database, creators: list[IndexCreator]) -> None:
    for create in creators:
        await create(db)
    log.info("indexes ensured on %s", db.name)


async def ping(db: Database) -> bool:
    try:
        await db.command("ping")
    except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
        return False
    return True
