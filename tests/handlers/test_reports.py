"""Reports: attendance from live joins and leaves, engagement counts, CSV exports, the timeline."""

import csv
import io

import pytest

from tests.api import Api, join_token
from tests.wsclient import WsClient, close_all


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


@pytest.mark.gen_test(timeout=30)
async def test_attendance_engagement_exports_and_timeline(api, base_url, services):
    host = await api.host()
    token = host["access_token"]
    w = await api.webinar(token)
    wid = w["id"]
    ada = await api.register(wid, name="Ada", email="ada@example.com")
    await api.register(wid, name="Bo", email="bo@example.com")  # registers, never comes
    guest = join_token(ada)
    lobby = await WsClient.connect(base_url, guest)
    await lobby.subscribe(f"room:{wid}")
    await api.call("POST", f"/api/webinars/{wid}/live", token=token)
    await lobby.expect("webinar.live")
    await lobby.rpc("chat.send", webinar_id=wid, text="hi")
    qid = (await lobby.rpc("qa.ask", webinar_id=wid, text="=cmd()"))["result"]["id"]
    code, _ = await api.call("POST", f"/api/webinars/{wid}/questions/{qid}/upvote", token=token)
    assert code == 200  # (an author cannot upvote their own question)
    await api.call("POST", f"/api/webinars/{wid}/questions/{qid}/answer", {"answer": "typed answer"}, token)
    pid = (
        await api.call("POST", f"/api/webinars/{wid}/polls", {"question": "Q", "options": ["a", "b"]}, token)
    )[1]["id"]
    await api.call("POST", f"/api/webinars/{wid}/polls/{pid}/open", token=token)
    await lobby.rpc("poll.vote", webinar_id=wid, poll_id=pid, choices=["1"])
    await lobby.rpc("reaction.send", webinar_id=wid, emoji="👍")
    await lobby.expect("reactions")  # counted and persisted once per interval
    await close_all(services, lobby)
    await api.call("POST", f"/api/webinars/{wid}/end", token=token)

    code, body = await api.call("GET", f"/api/webinars/{wid}/reports/attendance", token=token)
    rows = {r["email"]: r for r in body["attendance"]}
    assert rows["ada@example.com"]["present_live"] is True and rows["ada@example.com"]["seconds"] >= 0
    assert rows["ada@example.com"]["joined_at"] and rows["ada@example.com"]["left_at"]
    assert rows["bo@example.com"]["present_live"] is False and rows["bo@example.com"]["joined_at"] is None
    code, text = await api.call("GET", f"/api/webinars/{wid}/reports/attendance.csv", token=token, raw=True)
    table = list(csv.DictReader(io.StringIO(text)))
    assert {r["email"] for r in table} == {"ada@example.com", "bo@example.com"}

    code, counts = await api.call("GET", f"/api/webinars/{wid}/reports/engagement", token=token)
    assert counts == {
        "chat_messages": 1,
        "questions": 1,
        "question_upvotes": 1,
        "poll_votes": 1,
        "reactions": 1,
        "registrants": 2,
        "attendees": 1,
    }

    code, text = await api.call("GET", f"/api/webinars/{wid}/reports/questions.csv", token=token, raw=True)
    qrow = next(csv.DictReader(io.StringIO(text)))
    assert qrow["text"] == "'=cmd()" and qrow["answer"] == "typed answer" and qrow["votes"] == "1"
    code, text = await api.call("GET", f"/api/webinars/{wid}/reports/polls.csv", token=token, raw=True)
    assert [r["votes"] for r in csv.DictReader(io.StringIO(text))] == ["0", "1"]

    code, body = await api.call("GET", f"/api/webinars/{wid}/timeline", token=guest)
    types = [m["type"] for m in body["timeline"]]
    assert types == [
        "webinar.live",
        "chat.message",
        "qa.question",
        "qa.updated",
        "qa.updated",
        "poll.opened",
        "webinar.ended",
    ]
    seqs = [m["seq"] for m in body["timeline"]]
    assert body["complete"] is True
    assert seqs == sorted(seqs)
    code, body = await api.call("GET", f"/api/webinars/{wid}/timeline?since={seqs[-2]}", token=guest)
    assert [m["type"] for m in body["timeline"]] == ["webinar.ended"]
    code, body = await api.call("GET", f"/api/webinars/{wid}/timeline?since=x", token=guest)
    assert code == 422
    # reports are for hosts
    for path in ("reports/attendance", "reports/engagement", "reports/questions.csv", "registrations.csv"):
        code, _ = await api.call("GET", f"/api/webinars/{wid}/{path}", token=guest, raw=True)
        assert code == 403, path
    code, _ = await api.call("GET", "/api/webinars/unknown123/reports/engagement", token=token)
    assert code == 404
