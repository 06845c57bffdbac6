"""Every deploy artefact gives the server settings that exist, and its placeholder signing key is one
that ``MODE=production`` refuses, so nobody runs the committed example by mistake."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml

from config import ConfigError, load_settings
from tests.deploy import artefacts as a


def compose_env() -> dict[str, str]:
    compose = yaml.safe_load(a.COMPOSE.read_text())
    return a.compose_app_env(compose, "app1", a.env_file(a.COMPOSE_SECRETS_EXAMPLE.read_text()))


def kubernetes_env(directory: Path = a.KUBERNETES) -> dict[str, str]:
    env: dict[str, str] = {}
    for _, doc in a.kubernetes_documents(directory):
        if doc["kind"] == "ConfigMap":
            env.update(doc["data"])
        elif doc["kind"] == "Secret":
            env.update(doc["stringData"])
    return env


def systemd_env() -> dict[str, str]:
    return {
        **a.systemd_env(a.SYSTEMD_UNIT.read_text(), "8801"),
        **a.env_file(a.SYSTEMD_ENV_EXAMPLE.read_text()),
    }


SOURCES = {
    "dockerfile": a.dockerfile_env,
    "compose": compose_env,
    "kubernetes": kubernetes_env,
    "systemd": systemd_env,
}
# The artefacts that run more than one process (the Dockerfile is one process on its own).
MULTI_PROCESS = ["compose", "kubernetes", "systemd"]


def unknown_names(env: dict[str, str]) -> set[str]:
    return set(env) - a.SETTING_NAMES - a.INTERPRETER_NAMES


def load(env: dict[str, str], tmp_path: Path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    return load_settings(env, toml_path=empty)


@pytest.mark.parametrize("source", SOURCES)
def test_every_variable_is_a_setting(source):
    env = SOURCES[source]()
    assert env, "no settings read: the reader does not match the artefact"
    assert unknown_names(env) == set()


def test_a_misspelled_variable_is_caught(tmp_path):
    for path in a.KUBERNETES.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text().replace("REDIS_URL:", "REDIS_URI:"))
    assert unknown_names(kubernetes_env(tmp_path)) == {"REDIS_URI"}


@pytest.mark.parametrize("source", SOURCES)
def test_the_committed_keys_are_refused_in_production(source, tmp_path):
    env = SOURCES[source]()
    assert env["MODE"] == "production"
    with pytest.raises(ConfigError) as err:
        load(env, tmp_path)
    assert str(err.value).startswith("JWT_KEYS:")


@pytest.mark.parametrize("source", MULTI_PROCESS)
def test_with_a_real_key_the_settings_load_for_several_processes(source, tmp_path):
    env = SOURCES[source]() | {"JWT_KEYS": "k1:" + secrets.token_urlsafe(32)}
    settings = load(env, tmp_path)
    assert settings.production
    # Several processes fan out to each other's clients only through Redis.
    assert settings.redis_url.reveal().startswith("redis://")
    # Durable messages survive the loss of a MongoDB primary only with majority writes.
    mongodb_url = settings.mongodb_url.reveal()
    assert "replicaSet=" in mongodb_url and "w=majority" in mongodb_url
    assert settings.public_url


def stop_grace_seconds(source: str) -> float:
    """How long the artefact's supervisor lets a process stop before killing it."""
    if source == "compose":
        grace = yaml.safe_load(a.COMPOSE.read_text())["x-app"]["stop_grace_period"]
        return float(grace.removesuffix("s"))
    if source == "systemd":
        return float(a.SYSTEMD_UNIT.read_text().split("TimeoutStopSec=")[1].split()[0])
    deployment = next(d for _, d in a.kubernetes_documents() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    pre_stop = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    return float(pod["terminationGracePeriodSeconds"]) - float(pre_stop[1])


@pytest.mark.parametrize("source", MULTI_PROCESS)
def test_the_stop_fits_in_the_grace_period(source, tmp_path):
    """The server's whole stop (SHUTDOWN_TIMEOUT, realtime/process/drain.py) ends before the
    orchestrator kills it."""
    env = SOURCES[source]() | {"JWT_KEYS": "k1:" + secrets.token_urlsafe(32)}
    settings = load(env, tmp_path)
    assert settings.shutdown_timeout < stop_grace_seconds(source)
