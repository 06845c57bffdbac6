"""The OpenAPI 3.1 document, built from the route table (handlers/operations.py) and the request and
response models, and served at /api/openapi.json with a readable page at /api/docs.

Nothing here repeats a limit: each schema is the model's ``model_json_schema``, so the document is as
strict as the server's validation. Statuses come from the one kind-to-status map (handlers/base.py).
"""

from __future__ import annotations

import html
import re
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from config import Settings
from handlers.base import STATUS, JsonHandler
from handlers.json_input import JSON_VALUE, JSON_VALUE_MARK, JSON_VALUE_SCHEMA
from handlers.operations import PARAMETERS, WHO, Op, Response, operations
from storage.errors import Kind

REF = "#/components/schemas/{model}"

# The stable codes each operation may answer, by kind; the status follows from the kind.
CODES: dict[str, Kind] = {
    "invalid_json": Kind.MALFORMED,
    **dict.fromkeys(("invalid", "invalid_cursor", "bad_channel"), Kind.INVALID),
    "unsupported_media_type": Kind.UNSUPPORTED,
    "payload_too_large": Kind.TOO_LARGE,
    **dict.fromkeys(
        ("unauthorized", "token_invalid", "token_expired", "token_revoked", "bad_credentials")
        + ("refresh_invalid", "refresh_reused", "ticket_invalid", "reset_invalid"),
        Kind.UNAUTHORIZED,
    ),
    **dict.fromkeys(
        ("forbidden", "csrf_failed", "signup_closed", "muted", "banned", "account_disabled"), Kind.FORBIDDEN
    ),
    **dict.fromkeys(
        ("not_found", "notification_not_found", "job_not_found", "subscription_not_found"), Kind.NOT_FOUND
    ),
    **dict.fromkeys(
        ("email_taken", "already_live", "not_live", "webinar_ended", "webinar_cancelled", "webinar_full")
        + ("already_registered", "not_pending", "not_active", "already_voted", "poll_not_open")
        + ("own_question", "question_closed", "question_withdrawn")
        + ("poll_draft", "poll_open", "poll_closed", "cannot_moderate_host")
        + ("capacity_below_registrations", "concurrent_registration")
        + ("cohost_not_found", "panelist_not_found")
        + ("already_rated", "starts_in_the_past"),
        Kind.CONFLICT,
    ),
    **dict.fromkeys(("rate_limited", "slow_mode"), Kind.RATE_LIMITED),
    "unavailable": Kind.UNAVAILABLE,
    "in_progress": Kind.CONFLICT,
}
RETRY_AFTER = {
    "Retry-After": {
        "description": "whole seconds until the next attempt may succeed (also `error.retry_after`)",
        "schema": {"type": "integer", "minimum": 1},
    }
}
TOKEN_CODES = ("unauthorized", "token_invalid", "token_expired", "token_revoked")
BODY_CODES = ("invalid_json", "unsupported_media_type", "invalid", "payload_too_large")

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable and machine-readable"},
                "message": {"type": "string", "description": "for people"},
            },
            "additionalProperties": True,
        }
    },
}


ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


class _NoFieldTitles(GenerateJsonSchema):
    """Field titles ("Duration Minutes") only repeat the property names."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def document(settings: Settings) -> dict[str, Any]:
    ops = operations(settings)
    schemas = _schemas(ops)
    paths: dict[str, Any] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    for op, links in _links(ops):
        paths[op.path][op.method]["responses"]["201"]["links"] = links
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Webinar server API",
            "version": "1.0.0",
            "description": "Hosts schedule webinars, attendees register and take part live. Live actions "
            "are also RPC methods over /ws (docs/webinar-events.md); notifications in docs/notifications.md.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR, JSON_VALUE: JSON_VALUE_SCHEMA, **schemas},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "refresh_cookie": {"type": "apiKey", "in": "cookie", "name": "host_refresh"},
                "csrf_header": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token"},
            },
        },
    }


def _operation_id(op: Op) -> str:
    return re.sub(r"\W+", "_", f"{op.method}_{op.path}").strip("_")


def _links(ops: list[Op]) -> list[tuple[Op, dict[str, Any]]]:
    """OpenAPI links from each create (a POST answering 201 with a record that has an ``id``) to
    every operation on that record: POST /api/webinars links to GET, PATCH, .../live... of
    /api/webinars/{webinar_id}, the new id as its first parameter past the collection and the
    collection's own parameters as the request had them. Stateful testing follows them."""
    out = []
    for create in ops:
        made = create.ok.get(201)
        if create.method != "post" or not (isinstance(made, type) and "id" in made.model_fields):
            continue
        links: dict[str, Any] = {}
        for op in ops:
            rest = op.path.removeprefix(create.path + "/")
            if rest == op.path or not rest.startswith("{"):
                continue
            new_id = re.findall(r"\{(\w+)\}", rest)[0]
            parameters = {name: f"$request.path.{name}" for name in re.findall(r"\{(\w+)\}", create.path)}
            links[_operation_id(op)] = {
                "operationId": _operation_id(op),
                "parameters": {**parameters, new_id: "$response.body#/id"},
            }
        if links:
            out.append((create, links))
    return out


def _models(ops: list[Op]) -> list[type[BaseModel]]:
    found: dict[type[BaseModel], None] = {}
    for op in ops:
        if op.body is not None:
            found[op.body] = None
        for response in op.ok.values():
            for model in response if isinstance(response, tuple) else (response,):
                if isinstance(model, type):
                    found[model] = None
    return list(found)


def _schemas(ops: list[Op]) -> dict[str, Any]:
    _, top = models_json_schema(
        [(m, "validation") for m in _models(ops)], ref_template=REF, schema_generator=_NoFieldTitles
    )
    defs: dict[str, Any] = _with_json_values(dict(top.get("$defs", {})))
    return defs


def _with_json_values(schema: Any) -> Any:
    """``schema`` with each field marked JSON_VALUE_MARK referring to the JsonValue schema (pydantic
    cannot emit a reference to a schema it does not know)."""
    if isinstance(schema, list):
        return [_with_json_values(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get(JSON_VALUE_MARK):
        return {"$ref": REF.format(model=JSON_VALUE), "description": schema.get("description", "")}
    return {key: _with_json_values(value) for key, value in schema.items()}


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": REF.format(model=model.__name__)}


def _operation(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": _operation_id(op),
        "tags": [op.path.split("/")[2 if op.path.startswith("/api/") else 1]],
        "responses": {
            str(status): _described(status, _success(response)) for status, response in op.ok.items()
        },
    }
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": PARAMETERS[name]}
        for name in re.findall(r"\{(\w+)\}", op.path)
    ]
    if op.query is not None:
        parameters += _query_parameters(op.query)
    parameters += [{"name": k, "in": "header", "required": False, **v} for k, v in op.headers.items()]
    if parameters:
        out["parameters"] = parameters
    if op.auth == "cookie":
        browser: dict[str, list[str]] = {"refresh_cookie": [], "csrf_header": []}
        # a request body may carry the refresh token instead of the cookie
        out["security"] = [{}, browser] if op.body is not None else [browser]
    elif op.auth != "none":
        out["security"] = [{"bearer": []}]
    described = " ".join(part for part in (WHO.get(op.auth, ""), op.description) if part)
    if described:
        out["description"] = described
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    out["responses"].update(_errors(op))
    for status, answer in op.statuses.items():
        out["responses"][str(status)] = {"content": ERROR_CONTENT, **answer}
    return out


def _success(response: Response) -> dict[str, Any]:
    if response is None:
        return {"description": "Done (no body)"}
    if response in ("csv", "html", "event-stream", "plain"):
        return {
            "description": response.upper(),
            "content": {f"text/{response}": {"schema": {"type": "string"}}},
        }
    if response == "json":
        return {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    if isinstance(response, tuple):
        schema: dict[str, Any] = {"anyOf": [_ref(m) for m in response]}
    else:
        assert isinstance(response, type)
        schema = _ref(response)
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _described(status: int, success: dict[str, Any]) -> dict[str, Any]:
    return {**success, "description": HTTPStatus(status).phrase}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(schema_generator=_NoFieldTitles)
    required = set(schema.get("required", []))
    out = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        # "absent" is how a query says null: document the value's own schema
        branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
        if branches:
            prop.update(branches[0])
        if prop.get("default", 0) is None:
            del prop["default"]
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop.pop("description")
        out.append(param)
    return out


def _errors(op: Op) -> dict[str, Any]:
    codes: list[str] = []
    if op.body is not None:
        codes += BODY_CODES
    if op.query is not None or op.headers:
        codes.append("invalid")
    if op.auth == "cookie":
        codes += ("csrf_failed", "refresh_invalid")
    elif op.auth != "none":
        codes += TOKEN_CODES
    if "{" in op.path:
        codes.append("not_found")  # the router's answer to a path segment outside its pattern
    codes += op.errors
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(STATUS[CODES[code]], []).append(code)
    return {
        str(status): {
            "description": ", ".join(f"`{c}`" for c in found),
            "content": ERROR_CONTENT,
            **({"headers": RETRY_AFTER} if status == 429 else {}),
        }
        for status, found in sorted(by_status.items())
    }


class OpenApiHandler(JsonHandler):
    def initialize(self, document: dict[str, Any]) -> None:
        self.document = document

    def get(self) -> None:
        self.send(self.document)


class DocsHandler(JsonHandler):
    """A plain HTML listing of every operation (no external scripts), linking the JSON document."""

    def initialize(self, document: dict[str, Any]) -> None:
        self.document = document

    def get(self) -> None:
        rows = []
        for path, ops in self.document["paths"].items():
            for method, op in ops.items():
                body = (
                    op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema", {})
                )
                body_name = body.get("$ref", "").rsplit("/", 1)[-1]
                who = op.get("description", "Public")
                statuses = ", ".join(op["responses"])
                cells = [f"<code>{method.upper()}</code>", f"<code>{html.escape(path)}</code>"]
                cells += [html.escape(op["summary"]), html.escape(who), html.escape(body_name), statuses]
                rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        info = self.document["info"]
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.finish(
            "<!doctype html><html><head><meta charset=utf-8><title>API</title><style>"
            "body{font:15px system-ui;margin:2em}td{padding:4px 10px;border-bottom:1px solid #ddd}"
            f"</style></head><body><h1>{html.escape(info['title'])}</h1><p>{html.escape(info['description'])}</p>"
            '<p>Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1). '
            "Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>.</p>"
            "<table><tr><th>Method</th><th>Path</th><th>What</th><th>Who</th><th>Body</th><th>Statuses</th></tr>"
            + "".join(rows)
            + "</table></body></html>"
        )
