"""Notifications as the API and the live ``user:<id>`` messages show them."""

from __future__ import annotations

from typing import Any


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """The inbox item as the API and the live message show it."""
    return {
        "id": str(doc["_id"]),
        "category": doc["category"],
        "title": doc["title"],
        "body": doc.get("body", ""),
        "url": doc.get("url", ""),
        "webinar_id": doc.get("webinar_id"),
        "created_at": doc["created_at"].isoformat(),
        "read": doc.get("read_at") is not None,
        "archived": doc.get("archived_at") is not None,
    }
