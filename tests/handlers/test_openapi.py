"""The OpenAPI document validates, describes every /api route and method the app serves (and nothing
else), and is as strict as the server: what it requires the server requires, the statuses it lists
are the ones the server answers, and real responses match its schemas."""

import json

import pytest
import tornado.web
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from handlers.mail import HtmlPage
from handlers.pages import PageHandler
from server import make_app
from tests.api import Api, future, join_token

METHODS = ("get", "post", "put", "patch", "delete")


def examples(path: str, operations: dict) -> list[str]:
    """Concrete paths for a documented template: every enum value, a sample id elsewhere."""
    params = {p["name"]: p["schema"] for op in operations.values() for p in op.get("parameters", [])}
    results = [path]
    for name, schema in params.items():
        values = schema.get("enum", schema.get("examples", ["abc123"]))
        results = [r.replace("{" + name + "}", v) for r in results for v in values]
    return results


def served_methods(handler: type) -> set[str]:
    return {m for m in METHODS if getattr(handler, m) is not getattr(tornado.web.RequestHandler, m)}


async def fetch_document(http_client, base_url) -> dict:
    resp = await http_client.fetch(base_url + "/api/openapi.json")
    return json.loads(resp.body)


@pytest.mark.gen_test
async def test_document_validates(http_client, base_url):
    validate(await fetch_document(http_client, base_url))


@pytest.mark.gen_test
async def test_every_route_and_method_is_described(http_client, base_url, services):
    doc = await fetch_document(http_client, base_url)
    app = make_app(services)
    # every route but the pages (the browser's, and the HTML pages mails link to: unsubscribe, the
    # development mailbox) and static files: the API, health and the live transports' handshakes
    rules = [
        r
        for r in app.default_router.rules[0].target.rules
        if not issubclass(r.target, PageHandler | HtmlPage | tornado.web.StaticFileHandler)
    ]
    assert {"/healthz", "/readyz", "/ws", "/sse"} <= set(doc["paths"])
    documented = {
        (method, ex) for path, ops in doc["paths"].items() for ex in examples(path, ops) for method in ops
    }
    for rule in rules:
        for method in served_methods(rule.target):
            assert any(m == method and rule.matcher.regex.fullmatch(ex) for m, ex in documented), (
                f"{method.upper()} {rule.matcher.regex.pattern} is served but not in the OpenAPI document"
            )
    for method, ex in documented:
        handlers = [r.target for r in rules if r.matcher.regex.fullmatch(ex)]
        assert handlers and method in served_methods(handlers[0]), f"{method.upper()} {ex} is not served"


def operation(doc: dict, method: str, path: str) -> dict:
    return doc["paths"][path][method]


@pytest.mark.gen_test
async def test_statuses_and_required_fields_match_the_server(http_client, base_url):
    doc = await fetch_document(http_client, base_url)
    api = Api(http_client, base_url)
    token = (await api.host())["access_token"]
    create = operation(doc, "post", "/api/webinars")
    schema = doc["components"]["schemas"]["NewWebinar"]
    assert set(schema["required"]) == {"title", "starts_at", "timezone", "duration_minutes"}
    assert schema["additionalProperties"] is False and create["requestBody"]["required"] is True
    # each documented required field is required by the server, with the status the document names
    full = {"title": "T", "starts_at": future(), "timezone": "Europe/Berlin", "duration_minutes": 30}
    for name in schema["required"]:
        code, body = await api.call(
            "POST", "/api/webinars", {k: v for k, v in full.items() if k != name}, token
        )
        assert (code, body["error"]["message"]) == (422, f"{name}: is required")
    assert "422" in create["responses"] and "invalid_json" in create["responses"]["400"]["description"]
    code, _ = await api.call("POST", "/api/webinars", b"{not json", token)
    assert code == 400
    # the limits in the document are the server's
    title = schema["properties"]["title"]
    code, _ = await api.call("POST", "/api/webinars", {**full, "title": "x" * title["maxLength"]}, token)
    assert code == 201
    code, _ = await api.call(
        "POST", "/api/webinars", {**full, "title": "x" * (title["maxLength"] + 1)}, token
    )
    assert code == 422
    # an operation without a body or query does not claim 400/422; one with a query claims 422 only
    live = operation(doc, "post", "/api/webinars/{webinar_id}/live")
    assert not {"400", "422"} & set(live["responses"])
    inbox = operation(doc, "get", "/api/notifications")
    assert "422" in inbox["responses"] and "400" not in inbox["responses"]
    code, _ = await api.call("GET", "/api/notifications?limit=0", token=token)
    assert code == 422


def check_response(doc: dict, method: str, path: str, code: int, body) -> None:
    """``body`` is valid against the schema the document gives for this operation and status."""
    responses = operation(doc, method, path)["responses"]
    assert str(code) in responses, f"{method.upper()} {path} answered an undocumented {code}"
    content = responses[str(code)].get("content", {}).get("application/json")
    if content is None:
        return
    schema = {**content["schema"], "components": doc["components"]}
    OAS31Validator(schema).validate(body)


@pytest.mark.gen_test(timeout=60)
async def test_real_responses_match_the_documented_schemas(http_client, base_url):
    doc = await fetch_document(http_client, base_url)
    api = Api(http_client, base_url)
    W = "/api/webinars/{webinar_id}"

    async def call(method, template, body=None, token=None, query="", **params):
        code, out = await api.call(method.upper(), template.format(**params) + query, body, token)
        check_response(doc, method, template, code, out)
        return code, out

    code, host = await call("post", "/api/auth/signup", {"email": "doc@example.com", "password": "x" * 12,
                                                          "name": "Doc"})  # fmt: skip
    token = host["access_token"]
    await call("get", "/api/me", token=token)
    fields = {"title": "T", "starts_at": future(), "timezone": "Europe/Berlin", "duration_minutes": 30}
    code, w = await call("post", "/api/webinars", fields, token)
    wid = w["id"]
    await call("get", W, webinar_id=wid)
    await call("get", "/api/webinars", token=token)
    code, reg = await call("post", W + "/registrations", {"name": "Ada", "email": "ada@example.com"},
                           webinar_id=wid)  # fmt: skip
    ada = join_token(reg)
    await call("get", W + "/registrations", token=token, webinar_id=wid)
    await call("post", W + "/live", token=token, webinar_id=wid)
    await call("get", W + "/state", token=ada, webinar_id=wid)
    await call("post", W + "/chat", {"text": "hi"}, ada, webinar_id=wid)
    code, q = await call("post", W + "/questions", {"text": "why?"}, ada, webinar_id=wid)
    await call("get", W + "/questions", token=token, webinar_id=wid)
    code, poll = await call(
        "post", W + "/polls", {"question": "?", "options": ["a", "b"]}, token, webinar_id=wid
    )
    path = W + "/polls/{poll_id}/{poll_action}"
    await call("post", path, token=token, webinar_id=wid, poll_id=poll["id"], poll_action="open")
    choice = {"choices": [poll["options"][0]["id"]]}
    await call("post", W + "/polls/{poll_id}/vote", choice, ada, webinar_id=wid, poll_id=poll["id"])
    await call("post", W + "/polls/{poll_id}/vote", choice, ada, webinar_id=wid, poll_id=poll["id"])  # 409
    await call("post", W + "/hands", {"action": "raise"}, ada, webinar_id=wid)
    await call("get", W + "/hands", token=token, webinar_id=wid)
    await call("post", W + "/announcements", {"text": "soon"}, token, webinar_id=wid)
    await call("get", W + "/timeline", token=ada, webinar_id=wid)
    await call("get", W + "/timeline", token=ada, query="?since=-1", webinar_id=wid)  # 422
    await call("post", W + "/recording", {"url": "https://cdn.example.com/r.mp4"}, token, webinar_id=wid)
    await call("get", "/api/notifications", token=ada)
    await call("get", "/api/notifications/preferences", token=ada)
    await call("patch", "/api/notifications/preferences", {"categories": {"qa": {"push": False}}}, ada)
    await call("get", "/api/push/vapid-public-key")
    await call("get", "/api/channels/{channel}/history", token=ada, channel=f"room:{wid}")
    await call("get", "/api/channels/{channel}/presence", token=ada, channel=f"room:{wid}")
    await call("post", "/api/webinars", {"title": 5}, token)  # 422
    await call("get", "/api/me")  # 401


@pytest.mark.gen_test
async def test_docs_page(http_client, base_url):
    resp = await http_client.fetch(base_url + "/api/docs")
    assert resp.headers["Content-Type"].startswith("text/html")
    page = resp.body.decode()
    assert "/api/openapi.json" in page and "/api/webinars/{webinar_id}/registrations" in page


@pytest.mark.gen_test
async def test_a_405_names_the_allowed_methods_and_a_plain_get_of_ws_is_426(http_client, base_url):
    for method, path, allow in (
        ("TRACE", "/api/me", "GET, OPTIONS"),
        ("DELETE", "/api/webinars", "GET, POST, OPTIONS"),
        ("PUT", "/api/docs", "GET, OPTIONS"),
        ("POST", "/ws", "GET"),
        ("DELETE", "/healthz", "GET, OPTIONS"),
    ):
        resp = await http_client.fetch(
            base_url + path, method=method, raise_error=False, allow_nonstandard_methods=True
        )
        assert (resp.code, resp.headers.get("Allow")) == (405, allow), (method, path)
        assert json.loads(resp.body)["error"]["code"] == "method_not_allowed"
    resp = await http_client.fetch(base_url + "/ws", raise_error=False)
    assert (resp.code, resp.headers["Upgrade"]) == (426, "websocket")
    assert json.loads(resp.body)["error"]["code"] == "upgrade_required"


@pytest.mark.gen_test
async def test_creates_link_to_the_operations_on_what_they_created(http_client, base_url):
    doc = await fetch_document(http_client, base_url)
    links = operation(doc, "post", "/api/webinars")["responses"]["201"]["links"]
    by_id = {
        op["operationId"]: (method, path) for path, ops in doc["paths"].items() for method, op in ops.items()
    }
    targets = {by_id[link["operationId"]] for link in links.values()}
    assert {("get", "/api/webinars/{webinar_id}"), ("patch", "/api/webinars/{webinar_id}")} <= targets
    assert all(link["parameters"] == {"webinar_id": "$response.body#/id"} for link in links.values())
    vote = operation(doc, "post", "/api/webinars/{webinar_id}/polls")["responses"]["201"]["links"]
    assert vote["post__api_webinars_webinar_id_polls_poll_id_vote"]["parameters"] == {
        "webinar_id": "$request.path.webinar_id",
        "poll_id": "$response.body#/id",
    }
