"""Schemathesis fuzzes a few operations of a real running server from its own OpenAPI document: no
input, however odd, gets a 500, and every answer has a status and a body the document lists for it."""

from __future__ import annotations

import json
import urllib.request

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from tests.servers import AppProcess

OPERATIONS = [
    ("POST", "/api/auth/signup"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/webinars"),
    ("PATCH", "/api/webinars/{webinar_id}"),
    ("POST", "/api/webinars/{webinar_id}/registrations"),
    ("POST", "/api/notifications"),
    ("GET", "/api/notifications"),
    ("PATCH", "/api/notifications/preferences"),
    ("POST", "/api/push/subscriptions"),
    ("POST", "/api/channels/{channel}/messages"),
]
API_KEY = "fuzz-key-0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def app(mongo_server, tmp_path_factory):
    process = AppProcess(
        {
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": "fuzz" + str(id(tmp_path_factory)),
            "DATA_DIR": str(tmp_path_factory.mktemp("fuzz")),
            "LOG_LEVEL": "warning",
            "API_KEYS": f"fuzz:{API_KEY}",
        }
    )
    process.start()
    yield process
    process.stop()
    process.logfile.close()


def post(url: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def host(app):
    """A host's token and one webinar of theirs, which the fuzzed paths address."""
    account = post(
        app.url + "/api/auth/signup", {"email": "fuzz@example.com", "password": "x" * 12, "name": "F"}
    )
    token = account["access_token"]
    fields = {"title": "Fuzz", "starts_at": "2030-01-31T18:00:00+01:00", "timezone": "Europe/Berlin"}
    webinar = post(app.url + "/api/webinars", {**fields, "duration_minutes": 30}, token)
    return token, webinar["id"]


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_fuzzed_requests_get_documented_answers_never_500(app, host, method, path):
    token, webinar_id = host
    schema = schemathesis.openapi.from_url(app.url + "/api/openapi.json")
    operation = schema[path][method]
    auth = API_KEY if "notifications" in path and method == "POST" else token

    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]  # valid bodies, and ones that break a rule
    cases = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in modes))

    @given(case=cases)
    # derandomize: the same cases on every run, so the suite never fails by chance
    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        if "webinar_id" in (case.path_parameters or {}):
            case.path_parameters["webinar_id"] = webinar_id
        case.call_and_validate(
            base_url=app.url,
            headers={"Authorization": f"Bearer {auth}"},
            checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
            timeout=30,
        )

    run()
