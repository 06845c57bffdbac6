"""Every /api operation in one table: what it does, who may call it, its request and response models
and the error codes it can answer. handlers/openapi.py builds the OpenAPI document from this table
and the models; a test compares the table with the routes the app serves, so neither can drift.

Errors every operation of a kind shares are added by the builder, not repeated here: a request body
gives 400 ``invalid_json``, 415 and 422 ``invalid``; a query model gives 422 ``invalid``; any
authentication gives the 401 token codes; a path parameter gives 404 ``not_found`` (the router's
answer to a segment outside its pattern). ``errors`` lists the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from config import Settings
from handlers import accounts as a
from handlers import channels as c
from realtime.notifications import schemas as n
from realtime.schema import Query, View
from realtime.webinars import schemas as w

Auth = Literal["none", "cookie", "bearer", "host", "attendee", "integrator", "publisher", "reader"]
Media = Literal["csv", "html", "json", "event-stream", "plain"]
Response = type[BaseModel] | tuple[type[BaseModel], ...] | Media | None

WHO: dict[str, str] = {
    "cookie": "A browser's session: the HttpOnly `host_refresh` cookie (set by login or sign-up with "
    '`"cookie": true`) and the `X-CSRF-Token` header equal to the `host_csrf` cookie; a cross-site '
    "`Origin` is refused.",
    "bearer": "Needs a token.",
    "host": "Needs a host or co-host token (for a webinar: one of its hosts).",
    "attendee": "Any admitted participant's token (attendee or panelist); host-only actions answer 403.",
    "integrator": "An integrator API key, or a host token (for a webinar: one of its hosts or co-hosts).",
    "publisher": "An integrator API key, or the token of a host of the channel's webinar.",
    "reader": "An integrator API key, or a token the channel policy admits.",
}


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    summary: str
    auth: Auth
    body: type[BaseModel] | None = None
    ok: dict[int, Response] = field(default_factory=lambda: {200: None})
    errors: tuple[str, ...] = ()
    query: type[BaseModel] | None = None
    body_required: bool = True
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""  # more than the summary, for the reader
    statuses: dict[int, dict[str, Any]] = field(default_factory=dict)  # answers no error kind gives


WEBINAR_STATE = ("not_live", "webinar_ended", "webinar_cancelled")
ROOM = ("forbidden", "not_found")
LIVE = (*ROOM, "banned", *WEBINAR_STATE)  # taking part: banned attendees are refused
IDEMPOTENCY = {
    "Idempotency-Key": {
        "schema": n.IDEMPOTENCY_KEY.json_schema(),
        "description": "the same key never notifies a user twice",
    }
}


def operations(settings: Settings) -> list[Op]:
    """The table; ``settings`` for the limits that are settings (chat length, the reactions)."""
    chat = w.chat_message(settings.chat_max_chars)
    react = w.reaction(tuple(settings.reactions))
    W = "/api/webinars/{webinar_id}"
    return [
        Op("get", "/api/openapi.json", "This document (OpenAPI 3.1)", "none", ok={200: "json"}),
        Op("get", "/api/docs", "This document as a readable page", "none", ok={200: "html"}),
        # accounts
        Op("post", "/api/auth/signup", "Create a host account (if SIGNUP_OPEN)", "none", a.Signup,
           {201: a.Tokens}, ("signup_closed", "email_taken", "rate_limited")),
        Op("post", "/api/auth/login", "Log in with email and password (rate limited)", "none", a.Login,
           {200: a.Tokens}, ("bad_credentials", "rate_limited", "account_disabled")),
        Op("post", "/api/auth/refresh", "Rotate a refresh token: the body's, or without one the refresh "
           "cookie's (the answer then sets the next one in the cookie)", "cookie", a.RefreshBody,
           {200: a.Tokens}, ("refresh_invalid", "refresh_reused"), body_required=False),
        Op("delete", "/api/auth/refresh", "Sign a browser out: revoke the refresh cookie's token family "
           "and clear the session cookies", "cookie", ok={204: None}),
        Op("post", "/api/auth/logout", "Revoke this token (any kind) and the refresh token's family",
           "bearer", a.LogoutBody, {204: None}, ("refresh_invalid", "refresh_reused"), body_required=False),
        Op("post", "/api/auth/password-reset", "Email a host a password-reset link (the same answer "
           "whether or not the account exists; rate-limited per address and per client)", "none",
           a.PasswordResetRequest, {202: a.PasswordResetRequested}, ("rate_limited",)),
        Op("post", "/api/auth/password-reset/confirm", "Set a new password with the mailed single-use "
           "token; every session of the account ends", "none", a.PasswordResetConfirm, {204: None},
           ("reset_invalid", "rate_limited")),
        Op("get", "/api/me", "The caller", "bearer", ok={200: a.User}),
        # webinars and registrations
        Op("get", "/api/webinars", "Webinars I host or co-host", "host", ok={200: w.Webinars},
           errors=("forbidden",)),
        Op("post", "/api/webinars", "Schedule a webinar", "host", w.NewWebinar, {201: w.Webinar},
           ("forbidden", "cohost_not_found", "panelist_not_found", "starts_in_the_past")),
        Op("get", W, "A webinar's public page", "none", ok={200: w.Webinar}, errors=("not_found",)),
        Op("patch", W, "Edit or reschedule (the owner)", "host", w.WebinarChanges, {200: w.Webinar},
           (*ROOM, "webinar_ended", "webinar_cancelled", "capacity_below_registrations",
            "concurrent_registration", "cohost_not_found", "panelist_not_found", "starts_in_the_past")),
        Op("post", W + "/live", "Go live (moves the lobby in)", "host", ok={200: w.Webinar},
           errors=(*ROOM, "already_live", "webinar_ended", "webinar_cancelled")),
        Op("post", W + "/end", "End the webinar", "host", ok={200: w.Webinar}, errors=LIVE),
        Op("post", W + "/cancel", "Cancel a scheduled webinar (the owner)", "host", ok={200: w.Webinar},
           errors=(*ROOM, "already_live", "webinar_ended", "webinar_cancelled")),
        Op("post", W + "/registrations", "Register with name and email", "none", w.NewRegistration,
           {201: w.Registration},
           ("not_found", "webinar_full", "already_registered", "webinar_ended", "webinar_cancelled",
            "rate_limited")),
        Op("post", W + "/join-link", "Email me my join link again (the same answer whether or not the "
           "address is registered; rate-limited per address and per client)", "none", w.LinkRequest,
           {202: w.LinkRequested}, ("not_found", "rate_limited")),
        Op("get", W + "/registrations", "Registrants", "host", ok={200: w.RegistrationList}, errors=ROOM,
           query=w.RegistrantsQuery),
        Op("get", W + "/registrations.csv", "Registrants as CSV", "host", ok={200: "csv"}, errors=ROOM,
           query=w.SearchQuery),
        Op("delete", W + "/registrations/{registration_id}", "Cancel a registration (the registrant or a "
           "host; the link ends and the registrant's connections to the room close)", "attendee",
           ok={200: w.Registration}, errors=(*ROOM, "not_active")),
        Op("delete", W + "/registration", "Cancel my registration (the registrant, with the token of "
           "their join link; the link ends and their connections to the room close)", "attendee",
           ok={200: w.Registration}, errors=("not_found", "forbidden", "not_active")),
        Op("post", W + "/registrations/{registration_id}/{decision}", "Approve or reject a pending "
           "registration", "host", ok={200: w.Registration}, errors=(*ROOM, "not_pending", "webinar_full")),
        # the live room (each also an RPC method over /ws: docs/webinar-events.md)
        Op("get", W + "/state", "The room snapshot a late joiner receives", "attendee",
           ok={200: w.Snapshot}, errors=ROOM),
        Op("post", W + "/chat", "Send a chat message", "attendee", chat, {201: w.ChatMessage},
           (*LIVE, "muted", "slow_mode", "rate_limited", "in_progress", "unavailable")),
        Op("delete", W + "/chat/{message_id}", "Delete a chat message", "host", ok={200: w.Deleted},
           errors=ROOM),
        Op("get", W + "/moderation", "Who is muted or banned now", "host", ok={200: w.Moderated},
           errors=ROOM),
        Op("post", W + "/moderation", "Mute, unmute, ban or unban an attendee", "host", w.Moderation,
           {200: w.ModerationDone}, (*ROOM, "cannot_moderate_host")),
        Op("put", W + "/slow-mode", "Set slow mode (seconds, 0 off)", "host", w.SlowMode,
           {200: w.SlowModeSet}, (*ROOM, "webinar_ended", "webinar_cancelled")),
        Op("get", W + "/questions", "Questions", "attendee", ok={200: w.Questions}, errors=ROOM,
           query=w.QuestionsQuery),
        Op("post", W + "/questions", "Ask (optionally anonymous)", "attendee", w.NewQuestion,
           {201: w.Question}, (*LIVE, "in_progress", "unavailable")),
        Op("post", W + "/questions/{question_id}/{question_action}", "Upvote (anyone but the author, "
           "once), withdraw (the author, while open), answer (hosts, and panelists for an approved "
           "question; an optional body) or approve/dismiss/pin/unpin (hosts)", "attendee",
           w.AnswerText, {200: w.Question},
           (*LIVE, "already_voted", "own_question", "question_closed", "question_withdrawn"),
           body_required=False),
        Op("get", W + "/polls", "Polls (results when shown, always for hosts)", "attendee",
           ok={200: w.Polls}, errors=ROOM),
        Op("post", W + "/polls", "Prepare a poll", "host", w.NewPoll, {201: w.Poll},
           (*ROOM, "webinar_ended", "webinar_cancelled")),
        Op("post", W + "/polls/{poll_id}/vote", "Vote", "attendee", w.Choices, {200: w.VoteCast},
           (*LIVE, "already_voted", "poll_not_open")),
        Op("post", W + "/polls/{poll_id}/{poll_action}", "Open, close, show or hide the results (hosts)",
           "host", ok={200: w.Poll}, errors=(*LIVE, "poll_draft", "poll_open", "poll_closed")),
        Op("post", W + "/reactions", "Send a reaction emoji", "attendee", react, {202: w.ReactionSent},
           LIVE),
        Op("get", W + "/hands", "The raised-hand queue", "host", ok={200: w.Hands}, errors=ROOM),
        Op("post", W + "/hands", "Raise or lower a hand", "attendee", w.Hand, {200: w.HandState}, LIVE),
        Op("post", W + "/announcements", "Broadcast a banner (room or backstage)", "host",
           w.NewAnnouncement, {201: w.Announcement}, (*ROOM, "webinar_ended", "webinar_cancelled")),
        # reports
        Op("get", W + "/reports/attendance", "Attendance per registrant", "host", ok={200: w.Report},
           errors=ROOM),
        Op("get", W + "/reports/attendance.csv", "Attendance as CSV", "host", ok={200: "csv"},
           errors=ROOM),
        Op("get", W + "/reports/engagement", "Engagement counts", "host", ok={200: w.Report},
           errors=ROOM),
        Op("get", W + "/reports/feedback", "The attendees' ratings and comments", "host",
           ok={200: w.Ratings}, errors=ROOM),
        Op("get", W + "/feedback", "The caller's own rating of the webinar (null: none yet)", "attendee",
           ok={200: w.MyRating}, errors=ROOM),
        Op("post", W + "/feedback", "Rate the webinar (1-5, optional comment), once per attendee",
           "attendee", w.NewRating, {201: w.Rating},
           (*ROOM, "banned", "not_live", "webinar_cancelled", "already_rated", "rate_limited")),
        Op("get", W + "/reports/{export}.csv", "Q&A or poll results as CSV", "host", ok={200: "csv"},
           errors=ROOM),
        Op("get", W + "/timeline", "The room's durable timeline after since", "attendee",
           ok={200: w.Timeline}, errors=ROOM, query=w.TimelineQuery),
        # notifications (docs/notifications.md)
        Op("get", "/api/notifications", "The caller's inbox, newest first", "bearer",
           ok={200: n.NotificationPage}, errors=("invalid_cursor",), query=n.InboxQuery),
        Op("post", "/api/notifications", "Integrator send to users or a webinar's registrants",
           "integrator", n.NotificationSend, {201: n.Created, 202: n.JobQueued}, ROOM, headers=IDEMPOTENCY),
        Op("get", "/api/notifications/unread-count", "Unread count", "bearer", ok={200: n.Unread}),
        Op("post", "/api/notifications/read-all", "Mark every item read", "bearer", ok={200: n.ReadAll}),
        Op("get", "/api/notifications/preferences", "Preferences", "bearer", ok={200: n.Preferences}),
        Op("patch", "/api/notifications/preferences", "Switch categories per delivery method", "bearer",
           n.PreferencesUpdate, {200: n.Preferences}),
        Op("put", "/api/notifications/mutes/{muted_webinar_id}", "Mute a webinar", "bearer",
           ok={200: n.Preferences}),
        Op("delete", "/api/notifications/mutes/{muted_webinar_id}", "Unmute a webinar", "bearer",
           ok={200: n.Preferences}),
        Op("post", "/api/notifications/{notification_id}/{notification_action}", "Mark read/unread, "
           "archive/unarchive; publishes notification.unread to every tab", "bearer",
           ok={200: n.ItemChanged}, errors=("notification_not_found",)),
        Op("post", W + "/recording", "Store the recording URL and notify the registrants", "integrator",
           n.Recording, {202: n.RecordingQueued}, ROOM),
        Op("get", "/api/notification-jobs/{job_id}", "A fan-out job's status", "integrator",
           ok={200: n.JobStatus}, errors=("forbidden", "job_not_found")),
        Op("get", "/api/push/vapid-public-key", "The VAPID applicationServerKey", "none",
           ok={200: n.VapidKey}),
        Op("post", "/api/push/subscriptions", "Store a browser's push subscription", "bearer",
           n.PushSubscription, {201: n.SubscriptionCreated}),
        Op("delete", "/api/push/subscriptions", "Forget a push subscription", "bearer", n.PushEndpoint,
           {204: None}, ("subscription_not_found",)),
        # real time over REST (docs/protocol.md)
        Op("post", "/api/realtime/tickets", "Trade the bearer token for a single-use SSE ticket", "bearer",
           ok={201: Ticket}, errors=("rate_limited",)),
        Op("post", "/api/channels/{channel}/messages", "Publish to a channel", "publisher", c.Message,
           {202: c.Published}, ("bad_channel", "forbidden", "rate_limited", "in_progress", "unavailable")),
        Op("get", "/api/channels/{channel}/history", "A channel's durable messages after since",
           "reader", ok={200: c.ChannelHistory}, errors=("bad_channel", "forbidden", "banned"),
           query=c.HistoryQuery),
        Op("get", "/api/channels/{channel}/presence", "Who is in a channel now (a page of the roster)",
           "reader", ok={200: c.ChannelPresence}, errors=("bad_channel", "forbidden", "banned"),
           query=c.PresenceQuery),
        # outside /api: health, and the handshakes of the live transports (docs/protocol.md)
        Op("get", "/healthz", "Liveness: the process and its loop answer", "none", ok={200: Health}),
        Op("get", "/readyz", "Readiness: every dependency answers and the server is not draining", "none",
           ok={200: Ready, 503: (Ready, Draining)},
           description="503 with the failed checks, or `draining` from the moment the server is asked "
           "to stop (docs/deploy.md, \"Stopping\")."),
        Op("get", "/ws", "Open a WebSocket (the live protocol)", "none", ok={101: None},
           description="A WebSocket handshake (RFC 6455): send `Upgrade: websocket`, `Connection: Upgrade`, "
           "`Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`, with the page's `Origin`; the token is the "
           "first message, never in the URL. The messages are in docs/protocol.md.",
           statuses={403: {"description": "`forbidden`: the Origin is not allowed"},
                     426: {"description": "`upgrade_required`: not a WebSocket handshake",
                           "headers": {"Upgrade": {"schema": {"const": "websocket"}}}}}),
        Op("get", "/sse", "Open a Server-Sent Events stream of 1 to 16 channels", "none",
           ok={200: "event-stream"}, query=SseQuery,
           errors=("bad_channel", "ticket_invalid", "token_expired", "forbidden", "banned"),
           description="Redeem a ticket from POST /api/realtime/tickets; resume with `Last-Event-ID` or "
           "`last_event_id`. The events are in docs/protocol.md."),
        Op("get", "/metrics", "Prometheus metrics of this process (text exposition format)", "none",
           ok={200: "plain"},
           description="Served on this port only to peers in `METRICS_ALLOW`; the usual place is the "
           "separate `METRICS_PORT` listener. The metrics and what to alert on are in docs/alerts.md.",
           statuses={404: {"description": "`not_found`: this peer may not read the metrics here"}}),
    ]  # fmt: skip


class Health(View):
    status: Literal["ok"]


class Ready(View):
    status: Literal["ready", "unavailable"]
    checks: dict[str, bool] = Field(description="each dependency: whether it answered")
    draining: bool = Field(description="true while the server shuts down")
    warnings: list[str] = Field(
        description="problems that do not make it unready, such as server processes on the same database "
        "that cannot exchange live messages with this one"
    )


class DrainingError(View):
    code: Literal["draining"]
    message: str


class Draining(View):
    """The answer while the server stops (realtime/process/drain.py)."""

    error: DrainingError


CHANNEL_NAME = r"^(room|backstage|user):[A-Za-z0-9_.:@-]{1,128}$"
"""A channel's name, as realtime/engine/channels.py parses it."""


class SseQuery(Query):
    ticket: str = Field(min_length=1, max_length=200, description="a ticket from POST /api/realtime/tickets")
    channel: list[Annotated[str, Field(pattern=CHANNEL_NAME, max_length=140)]] = Field(
        min_length=1, max_length=16, description="repeat for each channel"
    )
    last_event_id: str | None = Field(None, max_length=4000, description="the id to resume after")


class Ticket(View):
    ticket: str
    expires_in: int = Field(description="seconds; the ticket opens one /sse stream")


ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}

PARAMETERS: dict[str, dict[str, Any]] = {
    "webinar_id": ID,
    "registration_id": ID,
    "message_id": ID,
    "question_id": ID,
    "poll_id": ID,
    "notification_id": ID,
    "job_id": ID,
    "muted_webinar_id": {"type": "string", "pattern": "^[A-Za-z0-9_.:@-]{1,128}$"},
    "channel": {"type": "string", "pattern": CHANNEL_NAME, "maxLength": 140, "examples": ["room:w1"]},
    "decision": {"enum": ["approve", "reject"]},
    "question_action": {"enum": ["upvote", "withdraw", "approve", "answer", "dismiss", "pin", "unpin"]},
    "poll_action": {"enum": ["open", "close", "show_results", "hide_results"]},
    "notification_action": {"enum": ["read", "unread", "archive", "unarchive"]},
    "export": {"enum": ["questions", "polls"]},
}
"""Path parameters, as the route table in server.py matches them."""
