"""The webinar domain's records as the API and the live protocol show them (JSON-ready dicts), and
its CSV exports.

Storage returns documents (``_id``, datetimes); these functions are the one place that decides
their public shape, so REST, RPC results, room events and snapshots always agree."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z`` suffix; None stays None."""
    return value.isoformat().replace("+00:00", "Z") if value else None


def public_webinar(w: dict[str, Any], *, private: bool = True) -> dict[str, Any]:
    """The webinar as the API shows it; ``private=False`` (anyone's view) omits the owner and the
    co-hosts' and panelists' emails."""
    out = {
        "id": w["_id"],
        "title": w["title"],
        "description": w["description"],
        "starts_at": iso(w["starts_at"]),
        "timezone": w["timezone"],
        "duration_minutes": w["duration_minutes"],
        "capacity": w["capacity"],
        "seats_taken": w["seats_taken"],
        "registration_mode": w["registration_mode"],
        "stream_url": w["stream_url"],
        "status": w["status"],
        "owner_id": w["owner_id"],
        "cohosts": w["cohost_emails"],
        "panelists": w.get("panelist_emails", []),  # webinars created before panelists: none
        "slow_mode_seconds": w["slow_mode_seconds"],
        "qa_moderation": w["qa_moderation"],
        "live_at": iso(w.get("live_at")),
        "ended_at": iso(w.get("ended_at")),
        "recording_url": w.get("recording_url") or "",
        "cta_url": w.get("cta_url") or "",
        "cta_label": w.get("cta_label") or "",
    }
    if not private:
        del out["owner_id"], out["cohosts"], out["panelists"]
    return out


def public_registration(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["_id"],
        "webinar_id": r["webinar_id"],
        "user_id": r["user_id"],
        "name": r["name"],
        "email": r["email"],
        "status": r["status"],
        "created_at": iso(r["created_at"]),
        "email_undeliverable": bool(r.get("email_undeliverable", False)),
    }


def public_chat(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": m["_id"],
        "user_id": m["user_id"],
        "name": m["name"],
        "role": m.get("role", "attendee"),  # messages stored before roles were kept: attendee
        "text": m["text"],
        "created_at": iso(m["created_at"]),
    }


def public_question(q: dict[str, Any], *, staff: bool = False) -> dict[str, Any]:
    """Anonymous questions hide their author except in the ``staff`` view."""
    hidden = q["anonymous"] and not staff
    return {
        "id": q["_id"],
        "text": q["text"],
        "anonymous": q["anonymous"],
        "name": "Anonymous" if hidden else q["name"],
        "user_id": None if hidden else q["user_id"],
        "votes": q["votes"],
        "status": q["status"],
        "answer": q["answer"],
        "answered_by": q.get("answered_by"),  # stored since answers record who gave them
        "pinned": q["pinned"],
        "approved": q["approved"],
        "created_at": iso(q["created_at"]),
    }


def public_poll(poll: dict[str, Any], *, results: bool) -> dict[str, Any]:
    """The poll; its ``counts`` and ``voters`` only with ``results``."""
    out = {
        "id": poll["_id"],
        "question": poll["question"],
        "options": poll["options"],
        "multiple": poll["multiple"],
        "status": poll["status"],
        "show_results": poll["show_results"],
        "created_at": iso(poll["created_at"]),
    }
    if results:
        out["counts"] = poll["counts"]
        out["voters"] = poll["voters"]
    return out


def public_announcement(a: dict[str, Any]) -> dict[str, Any]:
    return {"id": a["_id"], "text": a["text"], "audience": a["audience"], "created_at": iso(a["created_at"])}


def public_hand(h: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": h["user_id"], "name": h["name"], "raised_at": iso(h["raised_at"])}


def to_csv(header: list[str], rows: list[list[Any]]) -> str:
    """CSV text spreadsheets read as meant: booleans as ``yes``/``no``, times as ISO 8601 UTC, None
    as an empty cell; cells starting with = + - @ are prefixed with ' so spreadsheets do not run them."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_safe_cell(v) for v in row])
    return out.getvalue()


def _safe_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value
