"""Reports count attendees only, show time in the room with a decimal, and write CSV spreadsheets read."""

import csv
import io
from datetime import timedelta

import pytest

from tests.api import Api, join_token
from tests.wsclient import WsClient, close_all


@pytest.fixture
def api(http_client, base_url):
    return Api(http_client, base_url)


@pytest.mark.gen_test(timeout=60)
async def test_hosts_are_not_attendees_and_csv_reads_in_a_spreadsheet(api, base_url, services):
    host = await api.host()
    token = host["access_token"]
    w = await api.webinar(token)
    wid = w["id"]
    ada = await api.register(wid, name="Ada", email="ada@example.com")
    await api.register(wid, name="Bo", email="bo@example.com")
    await api.call("POST", f"/api/webinars/{wid}/live", token=token)
    backstage = await WsClient.connect(base_url, token)  # the host in the room, as the console is
    await backstage.subscribe(f"room:{wid}")
    guest = await WsClient.connect(base_url, join_token(ada))
    await guest.subscribe(f"room:{wid}")
    await close_all(services, guest, backstage)
    await api.call("POST", f"/api/webinars/{wid}/end", token=token)
    await services.domain.policy.room.attendance.flush()  # written behind: make it land now
    # Ada's stay was 69.8 s: shift her session's join back from its leave
    session = await services.db.attendance.find_one({"webinar_id": wid, "user_id": ada["user_id"]})
    await services.db.attendance.update_one(
        {"_id": session["_id"]}, {"$set": {"joined_at": session["left_at"] - timedelta(seconds=69.8)}}
    )

    code, counts = await api.call("GET", f"/api/webinars/{wid}/reports/engagement", token=token)
    assert code == 200 and counts["attendees"] == 1 and counts["registrants"] == 2
    code, body = await api.call("GET", f"/api/webinars/{wid}/reports/attendance", token=token)
    rows = body["attendance"]
    assert sorted(r["email"] for r in rows) == ["ada@example.com", "bo@example.com"]  # no host row
    ada_row = next(r for r in rows if r["email"] == "ada@example.com")
    assert ada_row["seconds"] == 69.8 and ada_row["minutes"] == 1.2

    code, text = await api.call("GET", f"/api/webinars/{wid}/reports/attendance.csv", token=token, raw=True)
    table = {r["email"]: r for r in csv.DictReader(io.StringIO(text))}
    assert set(table) == {"ada@example.com", "bo@example.com"}
    a, b = table["ada@example.com"], table["bo@example.com"]
    assert a["present_live"] == "yes" and a["registered"] == "yes"
    assert b["present_live"] == "no" and b["joined_at"] == ""
    assert a["minutes"] == "1.2" and a["seconds"] == "69.8"
    assert a["joined_at"].endswith("Z") and "T" in a["joined_at"]
    assert "True" not in text and "False" not in text


@pytest.mark.gen_test(timeout=60)
async def test_questions_csv_booleans_are_yes_no(api, base_url, services):
    host = await api.host()
    token = host["access_token"]
    wid = (await api.webinar(token))["id"]
    ada = await api.register(wid, name="Ada")
    await api.call("POST", f"/api/webinars/{wid}/live", token=token)
    guest = await WsClient.connect(base_url, join_token(ada))
    await guest.rpc("qa.ask", webinar_id=wid, text="a question", anonymous=True)
    await close_all(services, guest)
    code, text = await api.call("GET", f"/api/webinars/{wid}/reports/questions.csv", token=token, raw=True)
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["anonymous"] == "yes" and row["approved"] in ("yes", "no")
