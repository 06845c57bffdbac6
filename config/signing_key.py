"""The token signing key when ``JWT_KEYS`` is not set: random, generated on first start, kept in the data
directory (mode 0600) and reused on every restart, so no key published anywhere is ever accepted.

Processes that share ``DATA_DIR`` share the key (the file is created atomically: a concurrent first start
reads the winner's key). Processes on different machines must be given the same ``JWT_KEYS``, which
production requires anyway (``MODE=production`` refuses to start without it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

from config.settings import MIN_KEY_LENGTH, PUBLISHED_KEYS, ConfigError, Secret, Settings

KEY_FILE = "signing-key"
GENERATED_KID = "local"

log = logging.getLogger("config")


def with_signing_key(settings: Settings) -> Settings:
    """``settings`` with a signing key: ``JWT_KEYS`` as given (warning loudly about weak keys in
    development), else the key kept in ``DATA_DIR/signing-key``, generated there on first start."""
    if settings.jwt_keys:
        for kid, given in settings.jwt_keys.items():
            if len(given.reveal()) < MIN_KEY_LENGTH:
                log.warning(
                    "SECURITY: JWT_KEYS key %r is shorter than %d characters; anyone who guesses it can "
                    "sign tokens (MODE=production refuses it)",
                    kid,
                    MIN_KEY_LENGTH,
                )
        return settings
    path = settings.data_path / KEY_FILE
    key = load_or_create(path)
    log.warning(
        "SECURITY: JWT_KEYS is not set; signing tokens with the development key generated in %s. "
        "Set JWT_KEYS (the same on every process) for production.",
        path,
    )
    return settings.replace(jwt_keys={GENERATED_KID: Secret(key)})


def load_or_create(path: Path) -> str:
    """The key in ``path``; a new random one written there first if the file does not exist."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _create(path, secrets.token_urlsafe(48))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("SECURITY: %s was readable by others (mode %o); set to 0600", path, mode)
        path.chmod(0o600)
    key = path.read_text().strip()
    if len(key) < MIN_KEY_LENGTH or key in PUBLISHED_KEYS:
        raise ConfigError(f"JWT_KEYS: {path} does not hold a usable key; delete it to generate one")
    return key


def _create(path: Path, key: str) -> None:
    """Write ``key`` to ``path`` atomically and only if no other process did first: the key goes to a
    private temporary file, which is then hard-linked to ``path`` (a link never replaces a file)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process's first start won
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
