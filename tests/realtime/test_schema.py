"""The strict request models refuse what the hand-written readers refused, with the field named:
no coercion, no unknown fields, no object where a string belongs (so no operator reaches MongoDB)."""

from typing import Annotated

import pytest
from pydantic import Field

from realtime.notifications.schemas import NotificationSend, PreferencesUpdate, PushSubscription
from realtime.schema import Body, Email, HttpUrl, Instant, TimeZone, ident, read, trimmed
from realtime.webinars.schemas import NewPoll, NewWebinar, Vote, WebinarChanges, reaction
from storage.errors import Kind, Refused


class Sample(Body):
    t: Annotated[str, trimmed(5)] | None = None
    n: Annotated[int, Field(ge=0, le=5)] | None = None
    b: bool = False
    e: Email | None = None
    at: Instant | None = None
    zone: TimeZone | None = None
    url: HttpUrl | None = None


def refused(model, data):
    with pytest.raises(Refused) as err:
        read(model, data)
    assert err.value.kind is Kind.INVALID and err.value.code == "invalid"
    return err.value.message


def test_text_is_trimmed_and_bounded():
    assert read(Sample, {"t": "  hi "}).t == "hi"
    assert refused(Sample, {"t": {"$gt": ""}}) == "t: must be a string"
    assert refused(Sample, {"t": ["a"]}) == "t: must be a string"
    assert refused(Sample, {"t": "toolong"}) == "t: is longer than 5 characters"
    assert refused(Sample, {"t": "   "}) == "t: must not be empty"
    assert read(Sample, {"t": None}).t is None  # null is "not given" for an optional field
    assert refused(NewPoll, {"options": ["a", "b"]}) == "question: is required"


def test_no_coercion_and_no_unknown_fields():
    assert refused(Sample, {"n": "3"}) == "n: must be an integer"
    assert refused(Sample, {"n": True}) == "n: must be an integer"
    assert refused(Sample, {"n": 6}) == "n: must be at most 5"
    assert refused(Sample, {"b": "true"}) == "b: must be true or false"
    assert refused(Sample, {"x": 1}) == "x: unknown field"
    assert refused(WebinarChanges, {"registration_mode": "maybe"}).startswith("registration_mode: must be")
    assert refused(reaction(("👍", "🎉")), {"emoji": "💩"}).startswith("emoji: must be")


def test_email_instant_zone_url():
    assert read(Sample, {"e": " A@Example.COM "}).e == "a@example.com"
    assert refused(Sample, {"e": "nope"}) == "e: is not an email address"
    # email-validator: reserved names, bad domains and non-ASCII local parts (no SMTPUTF8) are refused
    for bad in ("ann@site.invalid", "ann@exa_mple.com", "ann..b@example.com", "josé@example.com"):
        assert refused(Sample, {"e": bad}).startswith("e: is not an email address ("), bad
    assert read(Sample, {"e": "ann@bücher.example"}).e == "ann@xn--bcher-kva.example"
    assert refused(Sample, {"e": {"$ne": None}}) == "e: must be a string"
    assert read(Sample, {"at": "2030-01-31T18:00:00+01:00"}).at.isoformat() == "2030-01-31T17:00:00+00:00"
    assert read(Sample, {"at": "2030-01-31T17:00:00Z"}).at.isoformat() == "2030-01-31T17:00:00+00:00"
    assert "offset" in refused(Sample, {"at": "2030-01-31T18:00:00"})
    assert refused(Sample, {"at": "tomorrow"}) == "at: is not an ISO 8601 date-time"
    assert refused(Sample, {"at": 1893456000}) == "at: must be a string"
    assert read(Sample, {"zone": "America/New_York"}).zone == "America/New_York"
    assert refused(Sample, {"zone": "../../etc/passwd"}).startswith("zone: is not an IANA time zone")
    assert refused(Sample, {"url": "ftp://x.example"}) == "url: must be an http(s) URL"
    assert read(Sample, {"url": "https://x.example/a.m3u8"}).url == "https://x.example/a.m3u8"
    # a webinar's stream URL may be emptied
    assert read(WebinarChanges, {"stream_url": ""}).stream_url == ""
    # only what the pages may play (their CSP: media-src and frame-src https:)
    for url in ("javascript:alert(1)", "http://cdn.example/live.m3u8", "https://"):
        assert refused(WebinarChanges, {"stream_url": url}) == (
            "stream_url: must be an https URL (the pages can play only https streams)"
        ), url
    assert read(WebinarChanges, {"stream_url": "https://cdn.example/a.m3u8"}).stream_url


def test_lists_nested_objects_and_ids_name_the_path():
    assert refused(NewPoll, {"question": "q", "options": ["a", {"$gt": 1}]}) == "options[1]: must be a string"
    assert refused(NewPoll, {"question": "q", "options": "ab"}) == "options: must be a list"
    assert refused(NewPoll, {"question": "q", "options": ["a"]}) == "options: needs at least 2 items"
    assert refused(Vote, {"poll_id": {"$gt": ""}, "choices": ["a"]}) == "poll_id: must be a string"
    assert refused(Vote, {"poll_id": "a/b", "choices": ["a"]}) == "poll_id: is not a valid id"
    assert refused(NewWebinar, {"title": "T"}) == "starts_at: is required"
    assert refused(WebinarChanges, {"cohosts": ["a@b.co", "x"]}) == "cohosts[1]: is not an email address"
    sub = {"endpoint": "https://push.example/1", "keys": {"p256dh": "k"}}
    assert refused(PushSubscription, sub) == "keys.auth: is required"
    bad = {"categories": {"announcement": {"fax": True}}}
    assert refused(PreferencesUpdate, bad) == "categories.announcement.fax: unknown field"
    bad = {"categories": {"announcement": {"push": "no"}}}
    assert refused(PreferencesUpdate, bad) == "categories.announcement.push: must be true or false"
    assert refused(PreferencesUpdate, {"categories": {"spam": {}}}).startswith("categories.spam: must be")
    assert ident("abc_1-2") == "abc_1-2"
    with pytest.raises(Refused, match="^webinar_id: must be a string$"):
        ident({"$gt": ""}, "webinar_id")
    with pytest.raises(Refused, match="^id: is not a valid id$"):
        ident("a/b")


def test_rules_across_fields_and_untrimmed_strings():
    assert refused(NotificationSend, {"title": "t"}) == "user_ids: send either user_ids or webinar_id"
    both = {"title": "t", "user_ids": ["a"], "webinar_id": "w1"}
    assert refused(NotificationSend, both) == "user_ids: send either user_ids or webinar_id"
    assert refused(NotificationSend, {"title": "  ", "user_ids": ["a"]}) == "title: must not be empty"
    assert read(NotificationSend, {"title": " t ", "user_ids": ["a"]}).title == " t "  # kept as sent
    assert refused(NotificationSend, {"title": "t", "user_ids": []}) == "user_ids: needs at least 1 item"
