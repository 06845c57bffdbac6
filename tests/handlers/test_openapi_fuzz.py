"""Schemathesis, an independent tool, tests every operation of a real running server from its own
OpenAPI document, signed in as a host: the examples, coverage and fuzzing phases for each operation
and the stateful phase along the document's links, with every check it has (no 5xx, statuses,
content types, headers and bodies as documented, schema-valid requests accepted and invalid ones
refused, 405s with Allow, authentication not ignored, deleted resources gone...). Bounded: a fixed
number of examples per operation and of stateful steps, derandomized, so the run takes the same
time and finds the same cases every time."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import schemathesis
import schemathesis.engine
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events

from config import load_settings
from handlers.openapi import document
from realtime.auth.tokens import TokenService
from tests.servers import AppProcess

JWT_KEYS = "fuzz:" + "fuzz-signing-key-0123456789abcdef0123456789"
API_KEY = "fuzz-key-0123456789abcdef0123456789abcdef"
EXAMPLES = 4  # per operation and phase; the coverage phase adds its deterministic cases
SCENARIOS = 15  # stateful: sequences of up to 8 linked calls, for at most STATEFUL_SECONDS
STATEFUL_SECONDS = 20
CONFIG: dict[str, Any] = {
    "checks": {"enabled": True},  # all of them
    "phases": {
        "examples": {"enabled": True},
        # each operation is also called with one method it does not serve (405 with Allow)
        "coverage": {"enabled": True, "unexpected-methods": ["TRACE"]},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": True},
    },
    # unknown query parameters are ignored by design (realtime/schema.py Query): not generated
    "generation": {
        "max-examples": EXAMPLES,
        "deterministic": True,
        "database": "none",
        "allow-extra-parameters": False,
    },
    "request-timeout": 30,
    "operations": [
        # A fuzzer sends no Upgrade headers (a handshake that succeeded would hold the connection
        # open), so a schema-valid GET /ws is the documented 426, never a 2xx.
        {"include-path": "/ws", "checks": {"positive_data_acceptance": {"expected-statuses": [101, 426]}}},
        # The coverage phase sends every value of an enum: the ~600 time zones of the webinar bodies
        # are a minute of requests. Their positive cases come from the fuzzing phase here.
        {
            "include-path-regex": "^/api/webinars(/\\{webinar_id\\})?$",
            "include-method": ["POST", "PATCH"],
            "phases": {"coverage": {"generation": {"mode": "negative"}}},
        },
    ],
}


@pytest.fixture(scope="module")
def app(mongo_server, tmp_path_factory):
    process = AppProcess(
        {
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": "fuzz" + str(id(tmp_path_factory)),
            "DATA_DIR": str(tmp_path_factory.mktemp("fuzz")),
            "LOG_LEVEL": "warning",
            "API_KEYS": f"fuzz:{API_KEY}",
            "JWT_KEYS": JWT_KEYS,
            "LOGIN_RATE": "10000",  # the fuzzer logs in far more often than a person
        }
    )
    process.start()
    yield process
    process.stop()
    process.logfile.close()


def call(url: str, body: dict | None = None, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, headers, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def host(app) -> str:
    """Sign a host up; each request then carries a fresh token of theirs (FreshHostToken)."""
    account = call(
        app.url + "/api/auth/signup", {"email": "fuzz@example.com", "password": "x" * 12, "name": "F"}
    )
    HOST["id"] = call(app.url + "/api/me", token=account["access_token"])["id"]
    return HOST["id"]


# The document the server serves, built by the same code from the same settings (handlers/openapi.py)
SETTINGS = load_settings({"JWT_KEYS": JWT_KEYS})  # and config/server.toml, as the server reads it
TOKENS = TokenService(SETTINGS)
schema = schemathesis.openapi.from_dict(document(SETTINGS), config=SchemathesisConfig.from_dict(CONFIG))
HOST: dict[str, str] = {}  # the signed-in host's user id, once the `host` fixture has signed up


@schema.auth(refresh_interval=None)
class FreshHostToken:
    """A fresh token of the host for every request: a fuzzed logout revokes only its own."""

    def get(self, case: Any, ctx: Any) -> str:
        # (asked once while tests are collected, before any sign-up: a token of nobody then)
        return TOKENS.issue(HOST.get("id", "nobody"), role="host", name="Fuzz")

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schema.parametrize()
def test_every_operation_answers_as_documented(case, app, host):
    case.call_and_validate(base_url=app.url)


def test_sequences_along_the_links_answer_as_documented(app, host):
    """The stateful phase, run by schemathesis's own engine: it chains operations along the links
    (create a webinar, then read, edit, go live... by its id) and, unlike a bare state machine
    under pytest, restarts a scenario whose replay diverges because the server's state moved on."""
    off = {"enabled": False}
    phases = {"examples": off, "coverage": off, "fuzzing": off, "stateful": {"enabled": True, "max-steps": 8}}
    config = {**CONFIG, "base-url": app.url, "phases": phases, "max-time": STATEFUL_SECONDS}
    config["generation"] = {**CONFIG["generation"], "max-examples": SCENARIOS}
    stateful = schemathesis.openapi.from_dict(document(SETTINGS), config=SchemathesisConfig.from_dict(config))
    stateful.auth(refresh_interval=None)(FreshHostToken)
    found, scenarios = [], 0
    for event in schemathesis.engine.from_schema(stateful).execute():
        if isinstance(event, events.ScenarioFinished):
            scenarios += 1
            for checks in event.recorder.checks.values():
                found += [
                    f"{check.failure_info.failure.title}: {check.failure_info.failure.message}\n"
                    f"{check.failure_info.code_sample}"
                    for check in checks
                    if check.failure_info is not None
                ]
        elif isinstance(event, events.NonFatalError):
            found.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    assert scenarios > 0
    assert not found, "\n\n".join(dict.fromkeys(found))


def test_a_body_over_the_limit_is_413_in_the_json_error_shape(app):
    """As server.py serves (handlers/body_limit.py in front of the application)."""
    body = b"{" + b" " * (1024 * 1024) + b"}"  # past the default MAX_BODY_BYTES
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(app.url + "/api/webinars", body, headers, method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=30)
    assert err.value.code == 413
    assert json.loads(err.value.read())["error"]["code"] == "payload_too_large"
