"""Accounts as the API shows them."""

from __future__ import annotations

from typing import Any


def public_user(user: dict[str, Any]) -> dict[str, Any]:
    """A user document as ``/api/auth/*`` and ``/api/me`` show it (never the password hash)."""
    return {"id": user["_id"], "email": user["email"], "name": user.get("name", ""), "role": user["role"]}
