"""Opening the MongoDB database and creating every index, idempotently, at start-up."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

log = logging.getLogger("storage.mongo")

Database = AsyncDatabase[dict[str, Any]]
IndexCreator = Callable[[Database], Awaitable[None]]


def open_client(url: str, **options: Any) -> AsyncMongoClient[dict[str, Any]]:
    """A client for ``url``; call inside the running loop it will be used on, close it on shutdown."""
    options.setdefault("serverSelectionTimeoutMS", 5000)
    options.setdefault("connectTimeoutMS", 5000)
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
