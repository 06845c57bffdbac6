"""The notification API's request bodies and views, written once (docs/notifications.md has the prose).

handlers/notifications.py and handlers/push.py validate with these (``read(Model, body)``); the
OpenAPI document (handlers/openapi.py) takes its schemas from the same classes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from typing_extensions import TypedDict

from realtime.schema import NOT_BLANK, Body, HttpUrl, Id, Query, View, not_blank
from storage.notifications import FILTERS
from storage.preferences import CATEGORIES

MAX_RECIPIENTS = 100_000

Category = Literal[CATEGORIES]  # type: ignore[valid-type]


CURSOR = "^([0-9a-fA-F]{24})?$"  # empty: the first page


class InboxQuery(Query):
    filter: Literal[FILTERS] = "all"  # type: ignore[valid-type]
    limit: Annotated[int, Field(ge=1, le=100, strict=False)] = 20
    cursor: (
        Annotated[
            str,
            # the form of every position (the answer to one that is not is invalid_cursor)
            Field(description="the next_cursor of the previous page", json_schema_extra={"pattern": CURSOR}),
        ]
        | None
    ) = None


UserId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


ARRAY, STRING, NULL = {"type": "array"}, {"type": "string"}, {"type": "null"}


class NotificationSend(Body):
    """``POST /api/notifications``: either ``user_ids`` (API key only) or ``webinar_id`` (its approved
    registrants). Up to 100 ``user_ids`` answer 201 ``{created}``; more, or ``webinar_id``, 202
    ``{job_id}``. The optional header ``Idempotency-Key`` (at most 200 characters) notifies once."""

    category: Category = "general"
    title: Annotated[
        str,
        StringConstraints(min_length=1, max_length=200),
        AfterValidator(not_blank),
        Field(pattern=NOT_BLANK),
    ]
    body: Annotated[str, StringConstraints(max_length=2000)] = ""
    url: Annotated[str, StringConstraints(max_length=2000)] = Field("", description="absolute or relative")
    user_ids: Annotated[list[UserId], Field(min_length=1, max_length=MAX_RECIPIENTS)] | None = None
    webinar_id: Id | None = None

    model_config = ConfigDict(  # the rule of _one_audience, for the document
        json_schema_extra={
            "oneOf": [
                {
                    "required": ["user_ids"],
                    "properties": {"user_ids": {"type": "array"}, "webinar_id": {"type": "null"}},
                },
                {
                    "required": ["webinar_id"],
                    "properties": {"webinar_id": {"type": "string"}, "user_ids": {"type": "null"}},
                },
            ]
        }
    )

    @model_validator(mode="after")
    def _one_audience(self) -> NotificationSend:
        if (self.user_ids is None) == (self.webinar_id is None):
            raise ValueError("user_ids: send either user_ids or webinar_id")
        return self


IdempotencyKey = Annotated[str, StringConstraints(max_length=200)]
IDEMPOTENCY_KEY: TypeAdapter[str] = TypeAdapter(IdempotencyKey)


class Switches(TypedDict, total=False):
    """One category's delivery methods; a switch not named keeps its value."""

    __pydantic_config__ = ConfigDict(strict=True, extra="forbid")  # type: ignore[misc]
    in_app: bool
    push: bool
    email: bool


class PreferencesUpdate(Body):
    categories: dict[Category, Switches]


class Recording(Body):
    url: HttpUrl


class PushKeys(Body):
    p256dh: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    auth: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class PushEndpoint(Body):
    """``DELETE /api/push/subscriptions``: the subscription's push service URL."""

    endpoint: HttpUrl


class PushSubscription(PushEndpoint):
    """``PushSubscription.toJSON()`` as the browser gives it."""

    keys: PushKeys
    expirationTime: int | float | None = None  # noqa: N815 - the browser's name


# Views: the response shapes, for the document ---------------------------------------------------


class Notification(View):
    id: str
    category: Category
    title: str
    body: str
    url: str
    webinar_id: str | None
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    read: bool
    archived: bool


class NotificationPage(View):
    items: list[Notification]
    next_cursor: str | None
    unread: int


class Created(View):
    created: int = Field(description="inbox items stored (0 when the Idempotency-Key was used)")


class JobQueued(View):
    job_id: str


class Unread(View):
    unread: int


class ItemChanged(View):
    item: Notification
    unread: int


class ReadAll(View):
    changed: int
    unread: Literal[0]


class Preferences(View):
    categories: dict[Category, dict[Literal["in_app", "push", "email"], bool]]
    muted_webinars: list[str]


class RecordingQueued(View):
    recording_url: str
    job_id: str


class JobStatus(View):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    attempts: int
    result: dict[str, Any] | None


class VapidKey(View):
    public_key: str = Field(description="base64url uncompressed P-256 point: the applicationServerKey")


class SubscriptionCreated(View):
    id: str
