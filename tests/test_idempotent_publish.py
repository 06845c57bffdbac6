"""Idempotent sends across two real processes (real Redis and SecantusDB): a retry with the same
``idempotency_key`` answers with the first send's result (the same message id and seq) instead of
sending again, whichever process and transport (REST or RPC) the retry reaches, even when both are
in flight at once; the timeline holds the message once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.api import Api
from tests.servers import app_processes
from tests.wsclient import WsClient

API_KEY = "idem-key-0123456789abcdef0123456789abcdef"


@pytest.fixture
def two_processes(mongo_server, test_id, tmp_path):
    with app_processes(mongo_server.url, test_id, tmp_path, API_KEYS=f"crm:{API_KEY}") as (_, apps):
        yield apps


async def publish(api: Api, key: str | None, channel: str = "room:crm") -> tuple[int, Any]:
    body: dict[str, Any] = {"type": "order", "data": {"key": key}}
    if key is not None:
        body["idempotency_key"] = key
    return await api.call("POST", f"/api/channels/{channel}/messages", body, API_KEY)


async def history_seqs(api: Api, channel: str, token: str = API_KEY) -> list[tuple[int, Any]]:
    code, page = await api.call("GET", f"/api/channels/{channel}/history?limit=1000", token=token)
    assert code == 200, page
    return [(m["seq"], m["data"]) for m in page["messages"]]


@pytest.mark.gen_test(timeout=90)
async def test_a_publish_retried_with_its_key_on_another_process_answers_the_first_seq(
    http_client, two_processes
):
    a, b = (Api(http_client, app.url) for app in two_processes)
    assert await publish(a, "order-1") == (202, {"channel": "room:crm", "seq": 1})
    assert await publish(b, "order-1") == (202, {"channel": "room:crm", "seq": 1})
    assert await publish(b, "order-2") == (202, {"channel": "room:crm", "seq": 2})
    assert await publish(a, "order-1", channel="room:other") == (202, {"channel": "room:other", "seq": 1})
    both = await asyncio.gather(*(publish(api, "order-3") for api in (a, b, a, b)))
    assert both == [(202, {"channel": "room:crm", "seq": 3})] * 4
    assert await publish(a, None) == (202, {"channel": "room:crm", "seq": 4})  # no key: always new
    assert await history_seqs(b, "room:crm") == [
        (1, {"key": "order-1"}),
        (2, {"key": "order-2"}),
        (3, {"key": "order-3"}),
        (4, {"key": None}),
    ]
    code, body = await a.call(
        "POST", "/api/channels/room:crm/messages", {"type": "x", "data": 1, "idempotency_key": ""}, API_KEY
    )
    assert (code, body["error"]["code"]) == (422, "invalid")


@pytest.mark.gen_test(timeout=90)
async def test_chat_and_questions_retried_with_their_key_answer_with_the_first_message(
    http_client, two_processes
):
    a, b = (Api(http_client, app.url) for app in two_processes)
    host, guest, w = await a.live_webinar()
    wid = w["id"]
    ws_a = await WsClient.connect(two_processes[0].url, guest)
    ws_b = await WsClient.connect(two_processes[1].url, guest)

    first = (await ws_a.rpc("chat.send", webinar_id=wid, text="hello", idempotency_key="c-1"))["result"]
    code, again = await b.call(
        "POST", f"/api/webinars/{wid}/chat", {"text": "hello", "idempotency_key": "c-1"}, guest
    )
    assert (code, again) == (201, first)  # the REST twin on the other process
    retried = await ws_b.rpc("chat.send", webinar_id=wid, text="hello", idempotency_key="c-1")
    assert retried == {"result": first}
    at_once = await asyncio.gather(
        ws_a.rpc("chat.send", webinar_id=wid, text="twice?", idempotency_key="c-2"),
        ws_b.rpc("chat.send", webinar_id=wid, text="twice?", idempotency_key="c-2"),
    )
    assert at_once[0] == at_once[1] and at_once[0]["result"]["seq"] > first["seq"]
    other = (await ws_b.rpc("chat.send", webinar_id=wid, text="hello", idempotency_key="c-3"))["result"]
    assert other["id"] != first["id"]

    question = (await ws_a.rpc("qa.ask", webinar_id=wid, text="why?", idempotency_key="q-1"))["result"]
    code, asked = await b.call(
        "POST", f"/api/webinars/{wid}/questions", {"text": "why?", "idempotency_key": "q-1"}, guest
    )
    assert (code, asked) == (201, question)

    texts = [data["text"] for _, data in await history_seqs(a, f"room:{wid}") if "text" in data]
    assert texts.count("hello") == 2 and texts.count("twice?") == 1 and texts.count("why?") == 1
    code, listed = await b.call("GET", f"/api/webinars/{wid}/questions", token=host)
    assert [q["id"] for q in listed["questions"]] == [question["id"]]
    ws_a.close()
    ws_b.close()
