"""The public shapes of the webinar domain's records, pinned: clients read these keys and formats
(REST bodies, RPC results, room events, snapshots), so a change here is an API change."""

from datetime import UTC, datetime

import pytest

from realtime.auth.views import public_user
from realtime.notifications.views import public
from realtime.webinars.views import (
    iso,
    public_announcement,
    public_chat,
    public_hand,
    public_poll,
    public_question,
    public_registration,
    public_webinar,
    to_csv,
)
from tests.api import Api
from tests.wsclient import WsClient, close_all

AT = datetime(2030, 5, 17, 9, 30, 15, 250000, tzinfo=UTC)
STAMP = "2030-05-17T09:30:15.250000Z"
WEBINAR = {
    "_id": "w1",
    "title": "Launch",
    "description": "",
    "starts_at": AT,
    "timezone": "Europe/Berlin",
    "duration_minutes": 60,
    "capacity": 10,
    "seats_taken": 2,
    "seats_left": 8,
    "registration_mode": "open",
    "stream_url": "",
    "status": "live",
    "owner_id": "u1",
    "cohost_ids": ["u2"],
    "cohost_emails": ["co@example.com"],
    "panelist_ids": ["u4"],
    "panelist_emails": ["pia@example.com"],
    "slow_mode_seconds": 0,
    "qa_moderation": False,
    "live_at": AT,
    "created_at": AT,
}


def test_webinar_private_and_public_views():
    assert public_webinar(WEBINAR) == {
        "id": "w1",
        "title": "Launch",
        "description": "",
        "starts_at": STAMP,
        "timezone": "Europe/Berlin",
        "duration_minutes": 60,
        "capacity": 10,
        "seats_taken": 2,
        "registration_mode": "open",
        "stream_url": "",
        "status": "live",
        "owner_id": "u1",
        "cohosts": ["co@example.com"],
        "panelists": ["pia@example.com"],
        "slow_mode_seconds": 0,
        "qa_moderation": False,
        "live_at": STAMP,
        "ended_at": None,
        "recording_url": "",
        "cta_url": "",
        "cta_label": "",
    }
    anyone = public_webinar(WEBINAR, private=False)
    assert "owner_id" not in anyone and "cohosts" not in anyone and "panelists" not in anyone
    private = ("owner_id", "cohosts", "panelists")
    assert list(anyone) == [k for k in public_webinar(WEBINAR) if k not in private]
    assert iso(None) is None


def test_room_record_views():
    reg = {"_id": "r1", "webinar_id": "w1", "user_id": "u3", "name": "Ada", "email": "a@x.io"}
    assert public_registration({**reg, "status": "approved", "created_at": AT}) == {
        **{"id": "r1", "webinar_id": "w1", "user_id": "u3", "name": "Ada", "email": "a@x.io"},
        "status": "approved",
        "created_at": STAMP,
        "email_undeliverable": False,
    }
    chat = {"_id": "c1", "user_id": "u3", "name": "Ada", "text": "hi", "deleted": False, "created_at": AT}
    shown = {
        "id": "c1",
        "user_id": "u3",
        "name": "Ada",
        "role": "attendee",
        "text": "hi",
        "created_at": STAMP,
    }
    assert public_chat(chat) == shown  # stored before roles were kept: an attendee
    assert public_chat({**chat, "role": "cohost"})["role"] == "cohost"
    q = {
        "_id": "q1",
        "user_id": "u3",
        "name": "Ada",
        "text": "why?",
        "anonymous": True,
        "approved": True,
        "status": "open",
        "answer": None,
        "pinned": False,
        "votes": 3,
        "voters": ["u4"],
        "created_at": AT,
    }
    assert public_question(q) == {
        "id": "q1",
        "text": "why?",
        "anonymous": True,
        "name": "Anonymous",
        "user_id": None,
        "votes": 3,
        "status": "open",
        "answer": None,
        "answered_by": None,  # a question stored before answers recorded who gave them
        "pinned": False,
        "approved": True,
        "created_at": STAMP,
    }
    answered = {
        **q,
        "status": "answered",
        "answer": "because",
        "answered_by": {"name": "Pia", "role": "panelist"},
    }
    assert public_question(answered)["answered_by"] == {"name": "Pia", "role": "panelist"}
    assert (public_question(q, staff=True)["name"], public_question(q, staff=True)["user_id"]) == (
        "Ada",
        "u3",
    )
    poll = {
        "_id": "p1",
        "question": "?",
        "options": [{"id": "0", "text": "a"}],
        "multiple": False,
        "counts": {"0": 1},
        "voters": 1,
        "status": "open",
        "show_results": False,
        "created_at": AT,
    }
    hidden = public_poll(poll, results=False)
    assert list(hidden) == ["id", "question", "options", "multiple", "status", "show_results", "created_at"]
    assert public_poll(poll, results=True) == {**hidden, "counts": {"0": 1}, "voters": 1}
    a = {"_id": "a1", "text": "Break", "audience": "room", "user_id": "u1", "active": True, "created_at": AT}
    assert public_announcement(a) == {"id": "a1", "text": "Break", "audience": "room", "created_at": STAMP}
    hand = {"_id": "w1:u3", "webinar_id": "w1", "user_id": "u3", "name": "Ada", "raised_at": AT}
    assert public_hand(hand) == {"user_id": "u3", "name": "Ada", "raised_at": STAMP}


def test_account_and_inbox_views():
    user = {"_id": "u1", "email": "h@x.io", "role": "host", "password_hash": "secret", "created_at": AT}
    assert public_user(user) == {"id": "u1", "email": "h@x.io", "name": "", "role": "host"}
    item = {"_id": "n1", "user_id": "u1", "key": "k", "category": "qa", "title": "T", "created_at": AT}
    assert public({**item, "read_at": AT, "archived_at": None}) == {
        "id": "n1",
        "category": "qa",
        "title": "T",
        "body": "",
        "url": "",
        "webinar_id": None,
        "created_at": "2030-05-17T09:30:15.250000+00:00",
        "read": True,
        "archived": False,
    }


def test_csv_neutralises_formulas_and_empties_none():
    text = to_csv(["a", "b", "c"], [["=1+1", None, 3], ["@x", "-2", "plain, quoted"]])
    assert text == "a,b,c\r\n'=1+1,,3\r\n'@x,'-2,\"plain, quoted\"\r\n"


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


@pytest.mark.gen_test
async def test_raised_hands_keep_their_shape_over_rest_and_in_the_backstage_snapshot(api, base_url, services):
    token, guest, w = await api.live_webinar()
    wid = w["id"]
    code, _ = await api.call("POST", f"/api/webinars/{wid}/hands", {"action": "raise"}, guest)
    assert code == 200
    code, body = await api.call("GET", f"/api/webinars/{wid}/hands", token=token)
    (hand,) = body["hands"]
    assert list(hand) == ["user_id", "name", "raised_at"] and hand["raised_at"].endswith("Z")
    host = await WsClient.connect(base_url, token)
    state = (await host.subscribe(f"backstage:{wid}"))["state"]
    assert state["hands"] == [hand]
    await close_all(services, host)
