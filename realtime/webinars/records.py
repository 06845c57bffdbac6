"""What a webinar event tells its listeners: small frozen records built from the stored documents.

They carry what a listener needs to act (ids, the people, the words, the start time), not the API's
rendering, so a listener neither depends on the REST shapes nor parses ISO text back into times.
A question record always names its author, even an anonymous one's: listeners run on the server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _aware(when: dt.datetime) -> dt.datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Webinar:
    id: str
    title: str
    status: str
    starts_at: dt.datetime

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Webinar:
        return cls(str(doc["_id"]), str(doc.get("title", "")), str(doc["status"]), _aware(doc["starts_at"]))


@dataclass(frozen=True)
class Registration:
    id: str
    webinar_id: str
    user_id: str
    name: str
    email: str
    status: str

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Registration:
        return cls(
            str(doc["_id"]), *(str(doc[k]) for k in ("webinar_id", "user_id", "name", "email", "status"))
        )


@dataclass(frozen=True)
class Announcement:
    id: str
    webinar_id: str
    text: str
    audience: str

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Announcement:
        return cls(str(doc["_id"]), str(doc["webinar_id"]), str(doc["text"]), str(doc["audience"]))


@dataclass(frozen=True)
class Question:
    id: str
    webinar_id: str
    user_id: str
    name: str
    text: str
    anonymous: bool
    status: str
    answer: str | None  # None when answered live (spoken, not typed) or not answered yet

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> Question:
        return cls(
            str(doc["_id"]),
            str(doc["webinar_id"]),
            str(doc["user_id"]),
            str(doc["name"]),
            str(doc["text"]),
            bool(doc["anonymous"]),
            str(doc["status"]),
            doc.get("answer"),
        )
