"""The compose file against the Compose Specification's JSON schema (vendored: see
compose_spec.NOTICE.md), and the load balancer's upstream against the compose services."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy import artefacts as a

SCHEMA = json.loads((Path(__file__).parent / "compose_spec.json").read_text())
# The schema declares draft 2019-09 with a "$schema" URI jsonschema does not know, so name it here.
VALIDATOR = jsonschema.Draft201909Validator(SCHEMA)
COMPOSE = yaml.safe_load(a.COMPOSE.read_text())


def errors(doc: dict[str, Any]) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


def test_the_vendored_schema_is_a_valid_schema():
    jsonschema.Draft201909Validator.check_schema(SCHEMA)


def test_the_compose_file_follows_the_specification():
    assert errors(COMPOSE) == []


def test_the_topology_is_a_balancer_two_apps_redis_and_mongodb():
    services = COMPOSE["services"]
    assert set(services) == {"lb", "app1", "app2", "redis", "mongodb"}
    assert all("healthcheck" in s for s in services.values())
    assert set(services["lb"]["depends_on"]) == {"app1", "app2"}


@pytest.mark.parametrize(
    "path,value,message",
    [
        (("services", "redis", "healthchek"), {"test": ["CMD", "true"]}, "'healthchek' does not match"),
        (("services", "lb", "ports"), "8080:80", "'8080:80' is not of type 'array'"),
        (("services", "app1", "depends_on", "redis", "condition"), ["service_healthy"], "is not valid under"),
    ],
    ids=["unknown-key", "ports-not-a-list", "bad-condition"],
)
def test_a_broken_copy_is_refused(path, value, message):
    broken = copy.deepcopy(COMPOSE)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert any(message in e for e in errors(broken)), errors(broken)


def upstream_problems(nginx_conf: str, compose: dict[str, Any]) -> list[str]:
    """The nginx upstream must name exactly the compose app services, on the port they listen on."""
    upstream = re.search(r"upstream\s+\w+\s*\{(.*?)\}", nginx_conf, re.DOTALL)
    if upstream is None:
        return ["no upstream block"]
    servers = set(re.findall(r"^\s*server\s+(\S+?:\d+)", upstream.group(1), re.MULTILINE))
    apps = {
        f"{name}:{service['environment']['PORT']}"
        for name, service in compose["services"].items()
        if "MODE" in service.get("environment", {})
    }
    return [] if servers == apps else [f"upstream {sorted(servers)} is not the app services {sorted(apps)}"]


def test_the_balancer_sends_to_every_app_service():
    assert upstream_problems(a.NGINX_CONF.read_text(), COMPOSE) == []


def test_a_missing_app_service_in_the_upstream_is_caught():
    conf = a.NGINX_CONF.read_text()
    assert upstream_problems(re.sub(r"\n\s*server app2:8888[^\n]*", "", conf), COMPOSE) != []
    renamed = copy.deepcopy(COMPOSE)
    renamed["services"]["app3"] = renamed["services"].pop("app2")
    assert upstream_problems(conf, renamed) != []
