"""The OpenAPI 3.1 description of the webinar REST API, written by hand.

A test validates it with openapi-spec-validator and checks that every /api route of the app is
described here, so the two cannot drift apart silently.
"""

from __future__ import annotations

import re
from typing import Any

from handlers import openapi_notifications

S = "#/components/schemas/"


def ref(name: str) -> dict[str, Any]:
    return {"$ref": S + name}


def string(max_len: int, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_len, **extra}


ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Signup": {
        "type": "object",
        "required": ["email", "password", "name"],
        "additionalProperties": False,
        "properties": {
            "email": string(320, format="email"),
            "password": {"type": "string", "minLength": 8, "maxLength": 200},
            "name": string(100),
        },
    },
    "Login": {
        "type": "object",
        "required": ["email", "password"],
        "additionalProperties": False,
        "properties": {"email": string(320, format="email"), "password": string(200)},
    },
    "RefreshRequest": {
        "type": "object",
        "required": ["refresh_token"],
        "additionalProperties": False,
        "properties": {"refresh_token": string(200)},
    },
    "User": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "email": {"type": ["string", "null"]},
            "name": {"type": "string"},
            "role": {"enum": ["host", "attendee"]},
        },
    },
    "Tokens": {
        "type": "object",
        "properties": {
            "access_token": {"type": "string", "description": "JWT; send as Authorization: Bearer"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer"},
            "refresh_token": {"type": "string", "description": "Opaque; rotated on every use"},
            "user": ref("User"),
        },
    },
    "WebinarInput": {
        "type": "object",
        "additionalProperties": False,
        "description": "Create needs title, starts_at, timezone, duration_minutes; PATCH takes any subset.",
        "properties": {
            "title": string(200, minLength=1),
            "description": string(10000),
            "starts_at": {"type": "string", "format": "date-time", "description": "ISO 8601 with offset"},
            "timezone": string(64, description="IANA time zone, e.g. Europe/Berlin"),
            "duration_minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
            "capacity": {"type": "integer", "minimum": 0, "description": "0: unlimited"},
            "registration_mode": {"enum": ["open", "approval"], "default": "open"},
            "stream_url": string(2000, description="HLS (.m3u8) or embeddable player URL"),
            "cohosts": {"type": "array", "maxItems": 20, "items": string(320, format="email")},
            "slow_mode_seconds": {"type": "integer", "minimum": 0, "maximum": 3600},
            "qa_moderation": {"type": "boolean", "description": "questions need a host's approval"},
        },
    },
    "Webinar": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "starts_at": TIME,
            "timezone": {"type": "string"},
            "duration_minutes": {"type": "integer"},
            "capacity": {"type": "integer"},
            "seats_taken": {"type": "integer"},
            "registration_mode": {"enum": ["open", "approval"]},
            "stream_url": {"type": "string"},
            "status": {"enum": ["scheduled", "live", "ended", "cancelled"]},
            "owner_id": {"type": "string"},
            "cohosts": {"type": "array", "items": {"type": "string"}},
            "slow_mode_seconds": {"type": "integer"},
            "qa_moderation": {"type": "boolean"},
            "live_at": TIME,
            "ended_at": TIME,
        },
    },
    "RegistrationInput": {
        "type": "object",
        "required": ["name", "email"],
        "additionalProperties": False,
        "properties": {"name": string(100, minLength=1), "email": string(320, format="email")},
    },
    "Registration": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "webinar_id": {"type": "string"},
            "user_id": {"type": "string"},
            "name": {"type": "string"},
            "email": {"type": "string"},
            "status": {"enum": ["approved", "pending", "rejected", "cancelled"]},
            "created_at": TIME,
            "join_url": {"type": "string", "description": "Personal link; the token is in the fragment"},
        },
    },
    "Text": {
        "type": "object",
        "required": ["text"],
        "properties": {"text": string(5000, minLength=1)},
    },
    "Question": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "text": {"type": "string"},
            "anonymous": {"type": "boolean"},
            "name": {"type": "string"},
            "user_id": {"type": ["string", "null"]},
            "votes": {"type": "integer"},
            "status": {"enum": ["open", "answered", "dismissed"]},
            "answer": {"type": ["string", "null"]},
            "pinned": {"type": "boolean"},
            "approved": {"type": "boolean"},
        },
    },
    "PollInput": {
        "type": "object",
        "required": ["question", "options"],
        "additionalProperties": False,
        "properties": {
            "question": string(500),
            "options": {"type": "array", "minItems": 2, "maxItems": 10, "items": string(200)},
            "multiple": {"type": "boolean", "default": False},
        },
    },
    "Poll": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "question": {"type": "string"},
            "options": {"type": "array", "items": {"type": "object"}},
            "multiple": {"type": "boolean"},
            "status": {"enum": ["draft", "open", "closed"]},
            "show_results": {"type": "boolean"},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "voters": {"type": "integer"},
        },
    },
    "Object": {"type": "object"},
}

# (method, path, summary, auth, request schema, success status, response schema)
OPERATIONS: list[tuple[str, str, str, str, str | None, int, str | None]] = [
    ("post", "/api/auth/signup", "Create a host account (if SIGNUP_OPEN)", "none", "Signup", 201, "Tokens"),
    (
        "post",
        "/api/auth/login",
        "Log in with email and password (rate limited)",
        "none",
        "Login",
        200,
        "Tokens",
    ),
    ("post", "/api/auth/refresh", "Rotate a refresh token", "none", "RefreshRequest", 200, "Tokens"),
    (
        "post",
        "/api/auth/logout",
        "Revoke the refresh token family and this access token",
        "bearer",
        "RefreshRequest",
        204,
        None,
    ),
    ("get", "/api/me", "The caller", "bearer", None, 200, "User"),
    ("get", "/api/webinars", "Webinars I host or co-host", "host", None, 200, "Object"),
    ("post", "/api/webinars", "Schedule a webinar", "host", "WebinarInput", 201, "Webinar"),
    ("get", "/api/webinars/{webinar_id}", "A webinar's public page", "none", None, 200, "Webinar"),
    ("patch", "/api/webinars/{webinar_id}", "Edit or reschedule", "host", "WebinarInput", 200, "Webinar"),
    ("post", "/api/webinars/{webinar_id}/live", "Go live (moves the lobby in)", "host", None, 200, "Webinar"),
    ("post", "/api/webinars/{webinar_id}/end", "End the webinar", "host", None, 200, "Webinar"),
    ("post", "/api/webinars/{webinar_id}/cancel", "Cancel a scheduled webinar", "host", None, 200, "Webinar"),
    (
        "post",
        "/api/webinars/{webinar_id}/registrations",
        "Register with name and email",
        "none",
        "RegistrationInput",
        201,
        "Registration",
    ),
    (
        "get",
        "/api/webinars/{webinar_id}/registrations",
        "Registrants (query: q, status)",
        "host",
        None,
        200,
        "Object",
    ),
    ("get", "/api/webinars/{webinar_id}/registrations.csv", "Registrants as CSV", "host", None, 200, "csv"),
    (
        "delete",
        "/api/webinars/{webinar_id}/registrations/{registration_id}",
        "Cancel a registration",
        "attendee",
        None,
        200,
        "Registration",
    ),
    (
        "post",
        "/api/webinars/{webinar_id}/registrations/{registration_id}/{decision}",
        "Approve or reject a pending registration",
        "host",
        None,
        200,
        "Registration",
    ),
    (
        "get",
        "/api/webinars/{webinar_id}/state",
        "The room snapshot a late joiner receives",
        "attendee",
        None,
        200,
        "Object",
    ),
    ("post", "/api/webinars/{webinar_id}/chat", "Send a chat message", "attendee", "Text", 201, "Object"),
    (
        "delete",
        "/api/webinars/{webinar_id}/chat/{message_id}",
        "Delete a chat message",
        "host",
        None,
        200,
        "Object",
    ),
    (
        "post",
        "/api/webinars/{webinar_id}/moderation",
        "Mute, unmute, ban or unban an attendee",
        "host",
        "Object",
        200,
        "Object",
    ),
    (
        "put",
        "/api/webinars/{webinar_id}/slow-mode",
        "Set slow mode (seconds, 0 off)",
        "host",
        "Object",
        200,
        "Object",
    ),
    (
        "get",
        "/api/webinars/{webinar_id}/questions",
        "Questions (query: sort=votes|time)",
        "attendee",
        None,
        200,
        "Object",
    ),
    (
        "post",
        "/api/webinars/{webinar_id}/questions",
        "Ask (optionally anonymous)",
        "attendee",
        "Text",
        201,
        "Question",
    ),
    (
        "post",
        "/api/webinars/{webinar_id}/questions/{question_id}/{question_action}",
        "Upvote (anyone, once) or approve/answer/dismiss/pin/unpin (hosts)",
        "attendee",
        "Object",
        200,
        "Question",
    ),
    (
        "get",
        "/api/webinars/{webinar_id}/polls",
        "Polls (results when shown, always for hosts)",
        "attendee",
        None,
        200,
        "Object",
    ),
    ("post", "/api/webinars/{webinar_id}/polls", "Prepare a poll", "host", "PollInput", 201, "Poll"),
    (
        "post",
        "/api/webinars/{webinar_id}/polls/{poll_id}/{poll_action}",
        "Vote (body: choices) or open/close/show_results/hide_results (hosts)",
        "attendee",
        "Object",
        200,
        "Object",
    ),
    (
        "post",
        "/api/webinars/{webinar_id}/reactions",
        "Send a reaction emoji",
        "attendee",
        "Object",
        202,
        "Object",
    ),
    ("get", "/api/webinars/{webinar_id}/hands", "The raised-hand queue", "host", None, 200, "Object"),
    (
        "post",
        "/api/webinars/{webinar_id}/hands",
        "Raise or lower a hand",
        "attendee",
        "Object",
        200,
        "Object",
    ),
    (
        "post",
        "/api/webinars/{webinar_id}/announcements",
        "Broadcast a banner (room or backstage)",
        "host",
        "Text",
        201,
        "Object",
    ),
    (
        "get",
        "/api/webinars/{webinar_id}/reports/attendance",
        "Attendance per registrant",
        "host",
        None,
        200,
        "Object",
    ),
    (
        "get",
        "/api/webinars/{webinar_id}/reports/attendance.csv",
        "Attendance as CSV",
        "host",
        None,
        200,
        "csv",
    ),
    (
        "get",
        "/api/webinars/{webinar_id}/reports/engagement",
        "Engagement counts",
        "host",
        None,
        200,
        "Object",
    ),
    (
        "get",
        "/api/webinars/{webinar_id}/reports/{export}.csv",
        "Q&A or poll results as CSV",
        "host",
        None,
        200,
        "csv",
    ),
    (
        "get",
        "/api/webinars/{webinar_id}/timeline",
        "The room's durable timeline (query: since)",
        "attendee",
        None,
        200,
        "Object",
    ),
]

ENUMS = {
    "decision": ["approve", "reject"],
    "question_action": ["upvote", "approve", "answer", "dismiss", "pin", "unpin"],
    "poll_action": ["vote", "open", "close", "show_results", "hide_results"],
    "export": ["questions", "polls"],
}
# The notification routes are described in their own module (kept apart to keep this one readable).
OPERATIONS += openapi_notifications.OPERATIONS
SCHEMAS.update(openapi_notifications.SCHEMAS)
ENUMS.update(openapi_notifications.ENUMS)

ERRORS = {
    "400": "Invalid input (code `invalid`, `invalid_json`)",
    "401": "Missing, invalid, expired or revoked token",
    "403": "Not allowed (e.g. an attendee attempting a host action)",
    "404": "Unknown webinar, registration, question, poll or message",
    "409": "Wrong state: `already_live`, `webinar_ended`, `poll_not_open`, `webinar_full`...",
    "429": "Rate limited (`rate_limited`, `slow_mode`)",
}


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path, summary, auth, body, status, response in OPERATIONS:
        params = []
        for name in re.findall(r"\{(\w+)\}", path):
            schema = {"enum": ENUMS[name]} if name in ENUMS else ID
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
        op: dict[str, Any] = {
            "summary": summary,
            "operationId": f"{method}_{path}".replace("/", "_")
            .replace("{", "")
            .replace("}", "")
            .replace(".", "_")
            .replace("-", "_"),
            "tags": [path.split("/")[2]],
            "responses": {str(status): _response(status, response)},
        }
        op["responses"].update(
            {
                code: {"description": text, "content": {"application/json": {"schema": ref("Error")}}}
                for code, text in ERRORS.items()
            }
        )
        if params:
            op["parameters"] = params
        if auth != "none":
            op["security"] = [{"bearer": []}]
            op["description"] = {
                "host": "Needs a host (or co-host) token.",
                "attendee": "Any admitted participant's token; host-only actions answer 403.",
                "bearer": "Needs a token.",
            }[auth]
        if body is not None:
            op["requestBody"] = {
                "required": body != "Object",
                "content": {"application/json": {"schema": ref(body)}},
            }
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Webinar server API",
            "version": "1.0.0",
            "description": "Hosts schedule webinars, attendees register and take part live. Live actions "
            "are also RPC methods over /ws (docs/webinar-events.md).",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


def _response(status: int, schema: str | None) -> dict[str, Any]:
    if schema is None:
        return {"description": "Done"}
    if schema == "csv":
        return {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}
    return {"description": "OK", "content": {"application/json": {"schema": ref(schema)}}}
