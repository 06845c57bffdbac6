"""The admin commands' work, on the database the server uses (``handlers/cli.py`` parses and prints).

Each command opens the database as the server does, except that with the embedded database it
uses the one the running server started (recorded in ``DATA_DIR/mongo.json``), and starts (and then
stops) its own only when no server runs; so every command works while the server runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from config import ConfigError, Settings
from realtime.auth.tokens import TokenService, mint_integrator_token
from realtime.engine.brokers import open_broker
from realtime.engine.control import Control
from realtime.jobs.retention import policy_of
from storage import accounts, embedded_backup, mongo, retention
from storage.embedded import database_url
from storage.mongo import Database

MAX_TOKEN_TTL = 365 * 86400
KICKED = 4003  # the close code of a kicked connection (docs/protocol.md)


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    url, embedded = await database_url(settings.mongodb_url.reveal(), settings.data_path, share=True)
    client = mongo.open_client(url)
    try:
        yield client[settings.mongodb_database]
    finally:
        await client.close()
        if embedded is not None:
            await embedded.stop()


async def create_host(settings: Settings, email: str, password: str, name: str) -> str:
    async with open_database(settings) as db:
        await accounts.create_indexes(db)
        user = await accounts.Accounts(db).create_host(email, password, name)
        return str(user["_id"])


async def list_hosts(settings: Settings) -> list[dict[str, Any]]:
    async with open_database(settings) as db:
        return await accounts.Accounts(db).hosts()


async def end_live_connections(settings: Settings, user_id: str, reason: str) -> bool:
    """Close ``user_id``'s WebSocket and SSE connections on every server process (4003), through
    the broker's kick, as logout does. Only Redis reaches other processes; False when there is no
    ``REDIS_URL`` or Redis did not answer (the connections then end when their token expires)."""
    if not settings.redis_url:
        return False
    unreached: list[str] = []
    broker = open_broker(settings.redis_url.reveal(), settings.redis_prefix)
    try:
        # The kick is applied locally only when the broker is down; here "locally" means not at all.
        control = Control(broker, lambda channel, *_: unreached.append(channel))
        await control.kick("*", user_id, KICKED, reason)
    finally:
        await broker.close()
    return not unreached


async def set_disabled(settings: Settings, email: str, disabled: bool) -> tuple[str, bool]:
    """(user id, whether live connections were closed)."""
    async with open_database(settings) as db:
        user = await accounts.Accounts(db).set_disabled(email, disabled)
    user_id = str(user["_id"])
    return user_id, disabled and await end_live_connections(settings, user_id, "account disabled")


async def reset_password(settings: Settings, email: str, password: str) -> tuple[str, bool]:
    async with open_database(settings) as db:
        user = await accounts.Accounts(db).reset_password(email, password)
    user_id = str(user["_id"])
    return user_id, await end_live_connections(settings, user_id, "password reset")


async def apply_retention(settings: Settings) -> dict[str, int]:
    async with open_database(settings) as db:
        return await retention.apply(db, policy_of(settings))


def _embedded_only(settings: Settings, what: str) -> None:
    if settings.mongodb_url:
        raise ConfigError(
            f"MONGODB_URL: {what} is for the embedded database; back MongoDB up with mongodump and "
            "restore it with mongorestore (docs/deploy.md)"
        )


async def backup(settings: Settings, output: Path) -> int:
    """A consistent archive of the embedded database, taken while the server runs; its size."""
    _embedded_only(settings, "backup")
    output = embedded_backup.archive_path(output)
    url, embedded = await database_url("", settings.data_path, share=True)
    try:
        return await embedded_backup.backup(url, output)
    finally:
        if embedded is not None:
            await embedded.stop()


def restore(settings: Settings, archive: Path) -> Path | None:
    """Unpack ``archive`` as the embedded database (the server must be stopped)."""
    _embedded_only(settings, "restore")
    return embedded_backup.restore(archive, settings.data_path / "mongo")


def mint_token(settings: Settings, sub: str, *, name: str, webinar: str | None, ttl: int, kid: str) -> str:
    """An integrator token this server accepts (it is verified before it is returned)."""
    if not settings.integrator_keys:
        raise ConfigError("INTEGRATOR_KEYS: no integrator key is set, so no integrator token can be minted")
    if kid and kid not in settings.integrator_keys:
        known = ", ".join(settings.integrator_keys)
        raise ConfigError(f"INTEGRATOR_KEYS: no key {kid!r} (the keys are {known})")
    if not 0 < len(sub) <= 128:
        raise ValueError("--sub must be 1 to 128 characters")
    if not 60 <= ttl <= MAX_TOKEN_TTL:
        raise ValueError(f"--ttl must be between 60 and {MAX_TOKEN_TTL} seconds")
    token = mint_integrator_token(settings, sub, name=name, webinar=webinar, ttl=ttl, kid=kid)
    TokenService(settings).verify(token)
    return token
