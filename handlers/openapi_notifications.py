"""The OpenAPI description of the notification and Web Push routes (docs/notifications.md has the
prose); handlers/openapi_doc.py folds these operations, schemas and enums into its document."""

from __future__ import annotations

from typing import Any

from storage.preferences import CATEGORIES

SWITCHES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"in_app": {"type": "boolean"}, "push": {"type": "boolean"}},
}

SCHEMAS: dict[str, Any] = {
    "Notification": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "category": {"enum": list(CATEGORIES)},
            "title": {"type": "string"},
            "body": {"type": "string"},
            "url": {"type": "string"},
            "webinar_id": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "read": {"type": "boolean"},
            "archived": {"type": "boolean"},
        },
    },
    "NotificationPage": {
        "type": "object",
        "description": "Query: filter (all|unread|archived), limit (1-100), cursor (next_cursor).",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Notification"}},
            "next_cursor": {"type": ["string", "null"]},
            "unread": {"type": "integer"},
        },
    },
    "NotificationSend": {
        "type": "object",
        "description": "Either user_ids (API key only) or webinar_id. Header Idempotency-Key is optional. "
        "Up to 100 user_ids answer 201 {created}; more, or webinar_id, answer 202 {job_id}.",
        "required": ["title"],
        "properties": {
            "user_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 100000},
            "webinar_id": {"type": "string"},
            "category": {"enum": list(CATEGORIES)},
            "title": {"type": "string", "maxLength": 200},
            "body": {"type": "string", "maxLength": 2000},
            "url": {"type": "string", "maxLength": 2000},
        },
    },
    "Preferences": {
        "type": "object",
        "properties": {
            "categories": {"type": "object", "additionalProperties": SWITCHES},
            "muted_webinars": {"type": "array", "items": {"type": "string"}},
        },
    },
    "PreferencesUpdate": {
        "type": "object",
        "required": ["categories"],
        "properties": {"categories": {"type": "object", "additionalProperties": SWITCHES}},
    },
    "Recording": {
        "type": "object",
        "required": ["url"],
        "properties": {"url": {"type": "string", "format": "uri", "maxLength": 2000}},
    },
    "PushSubscription": {
        "type": "object",
        "required": ["endpoint"],
        "description": "PushSubscription.toJSON(); DELETE needs only the endpoint.",
        "properties": {
            "endpoint": {"type": "string", "format": "uri"},
            "keys": {
                "type": "object",
                "properties": {"p256dh": {"type": "string"}, "auth": {"type": "string"}},
            },
        },
    },
}

OPERATIONS: list[tuple[str, str, str, str, str | None, int, str | None]] = [
    (
        "get",
        "/api/notifications",
        "The caller's inbox, newest first",
        "bearer",
        None,
        200,
        "NotificationPage",
    ),
    (
        "post",
        "/api/notifications",
        "Integrator send (API key or host token)",
        "bearer",
        "NotificationSend",
        202,
        "Object",
    ),
    ("get", "/api/notifications/unread-count", "Unread count", "bearer", None, 200, "Object"),
    ("post", "/api/notifications/read-all", "Mark every item read", "bearer", None, 200, "Object"),
    ("get", "/api/notifications/preferences", "Preferences", "bearer", None, 200, "Preferences"),
    (
        "patch",
        "/api/notifications/preferences",
        "Switch categories per delivery method",
        "bearer",
        "PreferencesUpdate",
        200,
        "Preferences",
    ),
    ("put", "/api/notifications/mutes/{webinar_id}", "Mute a webinar", "bearer", None, 200, "Preferences"),
    (
        "delete",
        "/api/notifications/mutes/{webinar_id}",
        "Unmute a webinar",
        "bearer",
        None,
        200,
        "Preferences",
    ),
    (
        "post",
        "/api/notifications/{notification_id}/{notification_action}",
        "Mark read/unread, archive/unarchive; publishes notification.unread to every tab",
        "bearer",
        None,
        200,
        "Object",
    ),
    (
        "post",
        "/api/webinars/{webinar_id}/recording",
        "Store the recording URL and notify registrants (API key or host token)",
        "bearer",
        "Recording",
        202,
        "Object",
    ),
    ("get", "/api/notification-jobs/{job_id}", "A fan-out job's status", "bearer", None, 200, "Object"),
    ("get", "/api/push/vapid-public-key", "The VAPID applicationServerKey", "none", None, 200, "Object"),
    (
        "post",
        "/api/push/subscriptions",
        "Store a browser's push subscription",
        "bearer",
        "PushSubscription",
        201,
        "Object",
    ),
    (
        "delete",
        "/api/push/subscriptions",
        "Forget a push subscription",
        "bearer",
        "PushSubscription",
        204,
        None,
    ),
]

ENUMS = {"notification_action": ["read", "unread", "archive", "unarchive"]}
