"""The room after its user channel resets: more changes of the attendee's own state were missed than
the channel keeps (``HISTORY_SIZE``). The page still shows the mute it missed, because the room's
resumed subscribe (right after the user channel's, on the same connection) carries a fresh snapshot
with ``me`` (realtime/engine/session.py ``join``; static/js/room.js ``applyMine``). A guard: it
passes on main, and fails if a resumed subscribe stops carrying ``me`` or the page stops applying it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import app_process, watch
from tests.browser.test_room_state import join, live_room
from tests.servers import AppProcess, MongoWireServer, RedisServer

pytestmark = pytest.mark.browser

HISTORY = 10  # the smallest HISTORY_SIZE: a personal channel keeps its newest 10 messages


@pytest.fixture(scope="module")
def app(
    mongo_server: MongoWireServer, redis_server: RedisServer, tmp_path_factory: Any
) -> Iterator[AppProcess]:
    yield from app_process(mongo_server, redis_server, tmp_path_factory, HISTORY_SIZE=str(HISTORY))


def test_a_reset_user_channel_brings_the_missed_mute_back(contexts, http, page_errors):
    token, wid, reg = live_room(http)
    context = contexts()
    page = watch(context.new_page(), page_errors)
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))
    join(page, reg["join_url"])
    user_id = reg["user_id"]
    expect(page.get_by_label("Message", exact=True)).to_be_enabled()
    # the room is followed (not only the socket open): a host's line arrives before the cut
    code, _ = http.call("POST", f"/api/webinars/{wid}/chat", {"text": "before the cut"}, token)
    assert code == 201
    expect(page.locator("#chat li .text")).to_have_text(["before the cut"])

    context.set_offline(True)
    expect(page.get_by_test_id("connection")).to_contain_text("Offline")
    # mute, unmute, ... mute: more messages on user:<id> than it keeps, none in the room
    for n in range(HISTORY + 1):
        action = "mute" if n % 2 == 0 else "unmute"
        code, body = http.call(
            "POST", f"/api/webinars/{wid}/moderation", {"user_id": user_id, "action": action}, token
        )
        assert code == 200, body
    context.set_offline(False)
    expect(page.get_by_test_id("connection")).to_have_text("Live", timeout=20_000)
    expect(page.get_by_test_id("muted-note")).to_contain_text("A host has muted you")
    expect(page.get_by_label("Message", exact=True)).to_be_disabled()
    # the user channel did reset (the case under test), and the room resumed with its snapshot
    subscribed = [f for f in frames if '"type":"subscribed"' in f]
    assert any(f'"user:{user_id}"' in f and '"reset":true' in f for f in subscribed), subscribed
    assert any(f'"room:{wid}"' in f and '"state"' in f and '"reset"' not in f for f in subscribed[2:]), (
        subscribed
    )
