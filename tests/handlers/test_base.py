"""JSON errors from every endpoint: stable codes, no stack traces, one log line with a request id."""

import json
import logging

import pytest
import tornado.web

from handlers.base import JsonHandler, NotFoundHandler, log_request
from storage.errors import Kind, Refused


class Boom(JsonHandler):
    def get(self) -> None:
        raise RuntimeError("secret internals")


class Refuse(JsonHandler):
    def post(self) -> None:
        body = self.json_body()
        raise Refused(Kind.CONFLICT, "already_live", f"cannot go live twice ({len(body)} fields)")


@pytest.fixture
def app():
    return tornado.web.Application(
        [(r"/boom", Boom), (r"/refuse", Refuse)],
        default_handler_class=NotFoundHandler,
        log_function=log_request,
    )


@pytest.mark.gen_test
async def test_exception_is_a_json_500_logged_once_with_request_id(http_client, base_url, caplog):
    with caplog.at_level(logging.ERROR, logger="handlers"):
        resp = await http_client.fetch(
            base_url + "/boom", raise_error=False, headers={"X-Request-Id": "req-123"}
        )
    assert resp.code == 500
    body = json.loads(resp.body)
    assert body["error"]["code"] == "internal_error" and "req-123" in body["error"]["message"]
    assert "secret internals" not in resp.body.decode() and "Traceback" not in resp.body.decode()
    errors = [r for r in caplog.records if r.name == "handlers"]
    assert len(errors) == 1 and "rid=req-123" in errors[0].getMessage()


@pytest.mark.gen_test
async def test_api_errors_and_bad_bodies(http_client, base_url):
    json_type = {"Content-Type": "application/json"}
    resp = await http_client.fetch(
        base_url + "/refuse", method="POST", body="{}", raise_error=False, headers=json_type
    )
    assert resp.code == 409
    assert json.loads(resp.body) == {
        "error": {"code": "already_live", "message": "cannot go live twice (0 fields)"}
    }
    resp = await http_client.fetch(base_url + "/refuse", method="POST", body="{bad", raise_error=False)
    assert resp.code == 400 and json.loads(resp.body)["error"]["code"] == "invalid_json"
    resp = await http_client.fetch(base_url + "/refuse", method="POST", body="a=b", raise_error=False)
    assert resp.code == 400
    resp = await http_client.fetch(
        base_url + "/refuse",
        method="POST",
        body="--x--",
        raise_error=False,
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert resp.code == 415
    resp = await http_client.fetch(base_url + "/refuse", raise_error=False)
    assert resp.code == 405 and json.loads(resp.body)["error"]["code"] == "method_not_allowed"
