"""The webinar domain's request bodies and views, written once.

REST and the live RPC share the service methods, so the bodies are validated here in the domain
(``read(Model, params)``) and the OpenAPI document (handlers/openapi.py) takes its schemas from the
same classes. Views describe the responses for the document; the ``public_*`` functions render them.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, create_model

from realtime.schema import (
    HTTP_URL_PATTERN,
    Body,
    Email,
    Id,
    IdempotencyKey,
    Instant,
    Query,
    TimeZone,
    View,
    http_url,
    idempotency_key,
    trimmed,
)

RegistrationMode = Literal["open", "approval"]
RegistrationStatus = Literal["approved", "pending", "rejected", "cancelled"]


def _url_or_empty(value: str) -> str:
    return http_url(value) if value else value


HTTPS_URL_PATTERN = HTTP_URL_PATTERN.replace("^https?://", "^https://", 1)


def _stream_url(value: str) -> str:
    """An https URL or empty: the pages' Content-Security-Policy (handlers/pages.py) lets media and
    frames load over https only, so an http:// stream would be accepted here and blocked there."""
    if value and not (value.startswith("https://") and _is_http_url(value)):
        raise ValueError("must be an https URL (the pages can play only https streams)")
    return value


def _is_http_url(value: str) -> bool:
    try:
        http_url(value)
    except ValueError:
        return False
    return True


StreamUrl = Annotated[
    str,
    trimmed(2000, min_len=0),
    AfterValidator(_stream_url),
    Field(
        description="HLS (.m3u8) or embeddable player URL, https only (what the pages may play); "
        "empty clears it",
        json_schema_extra={"pattern": f"^$|{HTTPS_URL_PATTERN}"},
    ),
]


CtaUrl = Annotated[
    str,
    trimmed(2000, min_len=0),
    AfterValidator(_url_or_empty),
    Field(
        description="the call to action attendees see on the thank-you view after the end; empty clears it",
        json_schema_extra={"pattern": f"^$|{HTTP_URL_PATTERN}"},
    ),
]


class WebinarChanges(Body):
    """``PATCH /api/webinars/{id}``: any subset of the fields; null means "leave as it is"."""

    title: Annotated[str, trimmed(200)] | None = None
    description: Annotated[str, trimmed(10_000, min_len=0)] | None = None
    starts_at: Instant | None = None
    timezone: TimeZone | None = None
    duration_minutes: Annotated[int, Field(ge=1, le=24 * 60)] | None = None
    capacity: Annotated[int, Field(ge=0, le=1_000_000, description="0: unlimited")] | None = None
    registration_mode: RegistrationMode | None = None
    stream_url: StreamUrl | None = None
    cohosts: Annotated[list[Email], Field(max_length=20, description="host accounts' emails")] | None = None
    panelists: (
        Annotated[
            list[Email],
            Field(
                max_length=50,
                description="emails of accounts (a host account or a registrant): they speak in the "
                "room's chat and Q&A with a badge but run no host action; replaces the list",
            ),
        ]
        | None
    ) = None
    slow_mode_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None
    qa_moderation: bool | None = Field(None, description="questions need a host's approval")
    cta_url: CtaUrl | None = None
    cta_label: Annotated[str, trimmed(60, min_len=0)] | None = Field(
        None, description='the call to action\'s button text; empty: "Learn more"'
    )


class NewWebinar(WebinarChanges):
    """``POST /api/webinars``."""

    title: Annotated[str, trimmed(200)]
    starts_at: Instant
    timezone: TimeZone
    duration_minutes: Annotated[int, Field(ge=1, le=24 * 60)]


def _known_zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return value


BrowserZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_zone)]


class NewRegistration(Body):
    name: Annotated[str, trimmed(100)]
    email: Email
    timezone: BrowserZone | None = Field(
        None,
        description="the registrant's IANA time zone (the browser's); mails show times in it. "
        "A zone this server does not know is ignored, never a reason to refuse a registration.",
    )


class LinkRequest(Body):
    email: Email


class ChatText(Body):
    text: str
    idempotency_key: IdempotencyKey | None = idempotency_key()


@cache
def chat_message(max_chars: int) -> type[ChatText]:
    """``chat.send``: ``text`` of at most ``CHAT_MAX_CHARS``, a setting, hence a model per limit."""
    return create_model("ChatInput", __base__=ChatText, text=(Annotated[str, trimmed(max_chars)], ...))


class ChatDelete(Body):
    message_id: Id


class Moderation(Body):
    user_id: Id
    action: Literal["mute", "unmute", "ban", "unban"]


class SlowMode(Body):
    seconds: Annotated[int, Field(ge=0, le=3600, description="0 turns slow mode off")]


class NewQuestion(Body):
    text: Annotated[str, trimmed(1000)]
    anonymous: bool = False
    idempotency_key: IdempotencyKey | None = idempotency_key()


class Upvote(Body):
    question_id: Id


class AnswerText(Body):
    """The REST body of a question action: ``answer`` only with ``answer`` (absent: answered live)."""

    answer: Annotated[str, trimmed(5000)] | None = None


class QuestionModeration(AnswerText):
    """A host's action on one question (``qa.approve`` ... over RPC; REST puts both ids in the path)."""

    question_id: Id
    action: Literal["approve", "answer", "dismiss", "pin", "unpin"]


class NewPoll(Body):
    question: Annotated[str, trimmed(500)]
    options: Annotated[list[Annotated[str, trimmed(200)]], Field(min_length=2, max_length=10)]
    multiple: bool = False


class PollControl(Body):
    poll_id: Id
    action: Literal["open", "close", "show_results", "hide_results"]


class Choices(Body):
    """The REST body of a vote (the poll is in the path)."""

    choices: Annotated[
        list[Annotated[str, trimmed(4)]], Field(min_length=1, max_length=10, description="option ids")
    ]


class Vote(Choices):
    poll_id: Id


class NewAnnouncement(Body):
    text: Annotated[str, trimmed(2000)]
    audience: Literal["room", "backstage"] = "room"


class Hand(Body):
    action: Literal["raise", "lower"]
    user_id: Id | None = Field(None, description="whose hand a host lowers; default: your own")


class ReactionEmoji(Body):
    emoji: str


@cache
def reaction(emojis: tuple[str, ...]) -> type[ReactionEmoji]:
    """``reaction.send``: one of the configured ``REACTIONS``, a setting, hence a model per list."""
    choice = Literal[emojis]  # type: ignore[valid-type]
    return create_model("ReactionInput", __base__=ReactionEmoji, emoji=(choice, ...))


class SearchQuery(Query):
    q: Annotated[str, Field(max_length=200, description="matches name or email")] | None = None


class RegistrantsQuery(SearchQuery):
    status: RegistrationStatus | None = None


class QuestionsQuery(Query):
    sort: Literal["votes", "time"] | None = None


class TimelineQuery(Query):
    since: Annotated[int, Field(ge=0, le=10**18 - 1, strict=False)] = 0


# Views: the response shapes, for the document ---------------------------------------------------


Role = Literal["host", "cohost", "panelist", "attendee"]


class Webinar(View):
    """A webinar; anyone's view (``GET /api/webinars/{id}``, room events) omits owner, co-hosts and
    panelists."""

    id: str
    title: str
    description: str
    starts_at: datetime
    timezone: str
    duration_minutes: int
    capacity: int
    seats_taken: int
    registration_mode: RegistrationMode
    stream_url: str
    status: Literal["scheduled", "live", "ended", "cancelled"]
    owner_id: str | None = None
    cohosts: list[str] | None = None
    panelists: list[str] | None = None
    slow_mode_seconds: int
    qa_moderation: bool
    live_at: datetime | None
    ended_at: datetime | None
    recording_url: str = Field(description="the replay, once a host set it; empty: none")
    cta_url: str = Field(description="the host's call to action after the end; empty: none")
    cta_label: str


class Webinars(View):
    webinars: list[Webinar]


class Registration(View):
    id: str
    webinar_id: str
    user_id: str
    name: str
    email: str
    status: RegistrationStatus
    created_at: datetime | None
    join_url: str | None = Field(None, description="personal link, the token in the fragment")
    email_undeliverable: bool = Field(
        False, description="the mail server refused this address (5xx): no more email goes to it"
    )


class LinkRequested(View):
    status: Literal["sent_if_registered"] = Field(
        description="a mail with the personal link went to the address if it is registered"
    )


class RegistrationList(View):
    registrations: list[Registration]


class ChatMessage(View):
    id: str
    user_id: str
    name: str
    role: Role = Field(
        description="the sender's role in the webinar when they sent it, as the server knows it (never "
        "what the client says): a badge beside hosts, co-hosts and panelists"
    )
    text: str
    created_at: datetime | None
    seq: int | None = None


class Deleted(View):
    id: str


class ModerationDone(View):
    user_id: str
    action: Literal["mute", "unmute", "ban", "unban"]


class ModeratedUser(View):
    user_id: str
    muted: bool
    banned: bool


class Moderated(View):
    """Who is muted or banned now, latest first."""

    users: list[ModeratedUser]


class SlowModeSet(View):
    slow_mode_seconds: int


class Answerer(View):
    """Who answered: their name and role in the webinar when they did."""

    name: str
    role: Literal["host", "cohost", "panelist"]


class Question(View):
    id: str
    text: str
    anonymous: bool
    name: str
    user_id: str | None
    votes: int
    status: Literal["open", "answered", "dismissed", "withdrawn"]
    answer: str | None
    answered_by: Answerer | None
    pinned: bool
    approved: bool
    created_at: datetime | None


class Questions(View):
    questions: list[Question]


class PollOption(View):
    id: str
    text: str


class Poll(View):
    id: str
    question: str
    options: list[PollOption]
    multiple: bool
    status: Literal["draft", "open", "closed"]
    show_results: bool
    created_at: datetime | None
    counts: dict[str, int] | None = None
    voters: int | None = None


class Polls(View):
    polls: list[Poll]


class VoteCast(View):
    poll_id: str
    choices: list[str]


class Announcement(View):
    id: str
    text: str
    audience: Literal["room", "backstage"]
    created_at: datetime | None


class HandState(View):
    user_id: str
    raised: bool


class RaisedHand(View):
    user_id: str
    name: str
    raised_at: datetime | None


class Hands(View):
    hands: list[RaisedHand]


class ReactionSent(View):
    emoji: str


class MyRoomState(View):
    """The snapshot's ``me``: the caller's own state in the room."""

    user_id: str
    votes: dict[str, list[str]] = Field(description="poll id -> the choices I voted (a vote is final)")
    hand_raised: bool
    muted: bool
    banned: bool
    questions: list[Question] = Field(description="my questions in every state, pending ones included")
    upvoted: list[str] = Field(description="ids of the questions I upvoted")


class Snapshot(BaseModel):
    """The late-joiner snapshot (docs/webinar-events.md): webinar, role, open polls, pinned question,
    announcement (and the last few), counts, recent history and my own state."""

    model_config = ConfigDict(extra="allow")
    webinar: Webinar
    role: Role
    announcements: list[Announcement] = Field(description="the room's newest announcements, newest first")
    me: MyRoomState


class Timeline(View):
    timeline: list[dict[str, Any]]
    complete: bool


class NewRating(Body):
    """``POST /api/webinars/{id}/feedback``: an attendee's rating after (or during) the webinar."""

    rating: Annotated[int, Field(ge=1, le=5, description="1 (poor) to 5 (excellent)")]
    comment: Annotated[str, trimmed(1000, min_len=0)] = ""


class Rating(View):
    rating: int
    comment: str
    created_at: datetime | None


class RatingEntry(Rating):
    name: str


class Ratings(View):
    """The attendees' ratings: how many, their average (None with none) and each with its comment."""

    count: int
    average: float | None
    ratings: list[RatingEntry]


class MyRating(View):
    rating: Rating | None


class Report(BaseModel):
    """A report object (attendance rows, engagement counts)."""

    model_config = ConfigDict(extra="allow")
