"""Paths of the deploy artefacts and readers for the settings each one gives the server."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import dockerfile
import yaml

from config.settings import FIELDS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_SECRETS_EXAMPLE = DEPLOY / "secrets.env.example"
NGINX_CONF = DEPLOY / "nginx.conf"
KUBERNETES = DEPLOY / "kubernetes"
SYSTEMD_UNIT = DEPLOY / "systemd" / "webinar-server@.service"
SYSTEMD_ENV_EXAMPLE = DEPLOY / "systemd" / "webinar-server.env.example"

SETTING_NAMES = frozenset(f.env for f in FIELDS)
# Variables for the interpreter and pip, not for the server.
INTERPRETER_NAMES = frozenset({"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"})


def kubernetes_documents(directory: Path = KUBERNETES) -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, doc)
        for path in sorted(directory.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]


def env_file(text: str) -> dict[str, str]:
    """``NAME=value`` lines as systemd's EnvironmentFile and compose's env_file read them."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def compose_app_env(compose: dict[str, Any], service: str, secrets: dict[str, str]) -> dict[str, str]:
    """The environment compose gives ``service``: its env_file, then ``environment`` with the
    ``${NAME:-default}`` interpolations at their defaults (compose's precedence)."""
    spec = compose["services"][service]
    env = dict(secrets)
    for name, value in spec.get("environment", {}).items():
        env[name] = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
    return env


def dockerfile_env(path: Path = DOCKERFILE) -> dict[str, str]:
    """The ENV of the Dockerfile's final stage."""
    env: dict[str, str] = {}
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            env = {}
        elif command.cmd == "ENV":
            pairs = command.value
            env.update(zip(pairs[::2], pairs[1::2], strict=True))
    return env


def systemd_env(unit_text: str, instance: str) -> dict[str, str]:
    """The ``Environment=`` assignments of a unit, with ``%i`` set to ``instance``."""
    env = {}
    for line in unit_text.splitlines():
        if line.startswith("Environment="):
            for item in shlex.split(line.removeprefix("Environment=").replace("%i", instance)):
                name, _, value = item.partition("=")
                env[name] = value
    return env
