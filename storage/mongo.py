"""Opening the MongoDB database and creating every index, idempotently, at start-up."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from storage.batch import gather_bounded

log = logging.getLogger("storage.mongo")

Doc = dict[str, Any]
Database = AsyncDatabase[Doc]
IndexCreator = Callable[[Database], Awaitable[None]]


DEFAULT_TIMEOUT = 3.0  # seconds; the MONGODB_TIMEOUT setting

# Values per ``$in`` on a bulk path. The embedded MongoDB-wire server (SecantusDB) finds the
# documents by index, then matches each against the whole list again: a ``$in`` of n costs n * n
# comparisons. Measured there for 1,000 ids by ``_id`` (bench/README.md, "Bulk notifications"):
# one ``$in`` of 1,000 took 950 ms of its CPU, twenty of 50 took 60-100 ms; a real MongoDB is
# linear either way and pays one round trip per group.
IN_GROUP = 50
GROUPS_AT_ONCE = 4  # groups of one call in flight together (the rest wait: bounded)


def in_groups(values: Sequence[Any], size: int = IN_GROUP) -> list[list[Any]]:
    """``values`` cut into lists of at most ``size``, in order."""
    return [list(values[start : start + size]) for start in range(0, len(values), size)]


async def each_group(values: Sequence[Any], run: Callable[[list[Any]], Awaitable[Any]]) -> list[Any]:
    """``run(group)`` for every ``IN_GROUP`` of ``values``, ``GROUPS_AT_ONCE`` at a time; the results
    in group order. A failure cancels the groups not yet done and is raised."""
    calls = [functools.partial(run, group) for group in in_groups(values)]
    return await gather_bounded(calls, GROUPS_AT_ONCE)


async def find_in(
    collection: AsyncCollection[Doc],
    field: str,
    values: Sequence[Any],
    query: dict[str, Any] | None = None,
    projection: dict[str, Any] | None = None,
) -> list[Doc]:
    """The documents whose ``field`` is one of ``values`` (and that match ``query``), one ``$in``
    per ``IN_GROUP`` values; no order is promised."""

    async def group(part: list[Any]) -> list[Doc]:
        return await collection.find({**(query or {}), field: {"$in": part}}, projection).to_list(None)

    return [doc for docs in await each_group(values, group) for doc in docs]


async def update_in(
    collection: AsyncCollection[Doc],
    field: str,
    values: Sequence[Any],
    query: dict[str, Any] | None,
    update: dict[str, Any],
) -> int:
    """``update_many`` of the documents whose ``field`` is one of ``values`` (and that match
    ``query``), one per ``IN_GROUP`` values; returns how many were modified."""

    async def group(part: list[Any]) -> int:
        result = await collection.update_many({**(query or {}), field: {"$in": part}}, update)
        return int(result.modified_count)

    return sum(await each_group(values, group))


async def insert_fresh(coll: AsyncCollection[Doc], doc: Doc) -> None:
    """Insert ``doc``, whose ``_id`` is new (random, or an ObjectId PyMongo sets on ``doc``). PyMongo
    retries a write once after a network error or a timeout; a server that does not deduplicate
    retried writes (SecantusDB) answers the retry of an insert that was stored with a duplicate key.
    That is our own document, not an error: a duplicate ``_id`` that is found stored is success
    (a loaded test run got a 500 from it); a duplicate on any other unique key is raised."""
    try:
        await coll.insert_one(doc)
    except DuplicateKeyError:
        if "_id" not in doc or await coll.find_one({"_id": doc["_id"]}, {"_id": 1}) is None:
            raise


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
