"""The server process as an operator starts and stops it: ``--help``, bad settings that end with one
line, and the drain on SIGTERM observed from outside."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient

from config import load_settings
from config.settings import FIELDS
from realtime.auth.tokens import TokenService
from tests.servers import ROOT, TEST_JWT_KEYS, AppProcess, MongoWireServer, free_port
from tests.sseclient import EventStream, ticket_for
from tests.waiting import wait_until
from tests.wsclient import WsClient


def run_server(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python server.py`` with the embedded database under ``tmp_path``, to its end."""
    full = {**os.environ, "DATA_DIR": str(tmp_path), "MONGODB_URL": "", "REDIS_URL": "", **env}
    return subprocess.run(
        [sys.executable, str(ROOT / "server.py"), *args],
        env=full,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def processes_using(path: Path) -> list[int]:
    """Pids of the processes whose command line names ``path`` (an embedded database left behind)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(path).encode() in cmdline:
                found.append(int(entry.name))
    return found


def assert_one_line_refusal(run: subprocess.CompletedProcess[str], setting: str, tmp_path: Path) -> str:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"configuration error: {setting}: "), lines[0]
    assert "Traceback" not in run.stderr + run.stdout
    assert processes_using(tmp_path) == []  # no orphaned embedded database
    return lines[0]


def test_help_lists_the_options_and_every_setting(tmp_path):
    run = run_server(tmp_path, {}, "--help")
    assert run.returncode == 0, run.stderr
    for option in ("--workers N", "--host", "--port", "--config FILE"):
        assert option in run.stdout
    for field in FIELDS:
        assert f"  {field.env} " in run.stdout
    assert "README.md" in run.stdout


@pytest.mark.parametrize(
    "env,args,setting,says",
    [
        ({"REMINDER_OFFSETS": "abc"}, (), "REMINDER_OFFSETS", "whole minutes"),
        ({"HOST": "999.1.1.1"}, (), "HOST", "'999.1.1.1'"),
        ({}, ("--host", "999.1.1.1"), "HOST", "'999.1.1.1'"),
        ({}, ("--workers", "two"), "WORKERS", "expected an integer"),
        ({}, ("--workers", "2"), "WORKERS", "need REDIS_URL"),
        ({"DRAIN_SECONDS": "30"}, (), "SHUTDOWN_TIMEOUT", "must exceed"),
    ],
)
def test_a_bad_setting_ends_with_one_line_and_exit_code_2(tmp_path, env, args, setting, says):
    line = assert_one_line_refusal(run_server(tmp_path, {"PORT": "0", **env}, *args), setting, tmp_path)
    assert says in line
    assert "invalid literal" not in line


def test_a_port_in_use_ends_with_one_line_and_no_orphaned_database(tmp_path):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        run = run_server(tmp_path, {"HOST": "127.0.0.1", "PORT": str(port)})
    line = assert_one_line_refusal(run, "PORT", tmp_path)
    assert f"127.0.0.1:{port} is already in use" in line


async def readyz(url: str) -> tuple[int, dict]:
    resp = await AsyncHTTPClient().fetch(url + "/readyz", raise_error=False)
    if resp.code == 599:
        raise resp.error
    return resp.code, json.loads(resp.body)


async def refused(port: int) -> bool:
    """Whether a new TCP connection to ``port`` is refused (the listener is closed)."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


@pytest.mark.gen_test(timeout=180)
async def test_sigterm_drains_then_closes_the_listener_then_spreads_the_closes(
    mongo_server, test_id, tmp_path
):
    """Observed from outside: readyz 503 ``draining`` while a new client still connects, then new
    connections refused, then every live client (WebSocket and SSE) closed with 1001, the closes
    spread over DRAIN_CLOSE_WINDOW, then the process exits 0."""
    window = 4.0
    app = AppProcess(
        {
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": test_id,
            "REDIS_URL": "",
            "DATA_DIR": str(tmp_path),
            # long enough for the steps below on a busy machine; the test waits for events, not time
            "DRAIN_SECONDS": "8",
            "DRAIN_CLOSE_WINDOW": str(window),
            "SHUTDOWN_TIMEOUT": "60",
        }
    )
    app.start()
    try:
        empty = tmp_path / "empty.toml"
        empty.write_text("")
        tokens = TokenService(load_settings({"JWT_KEYS": TEST_JWT_KEYS}, toml_path=empty))
        clients = []
        for i in range(5):
            client = await WsClient.connect(app.ws_url, tokens.issue(f"u{i}", role="attendee"))
            await client.subscribe(f"user:u{i}")
            clients.append(client)
        ticket = await ticket_for(AsyncHTTPClient(), app.url, tokens.issue("s1", role="attendee"))
        stream = await EventStream().open(app.url, ticket, ["user:s1"])
        await stream.event("subscribed")
        assert (await readyz(app.url))[0] == 200

        app.proc.send_signal(signal.SIGTERM)
        # at once, and while still listening; the server offers no event for "the signal arrived"
        while (answer := await readyz(app.url))[0] == 200:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert answer[0] == 503 and answer[1]["error"]["code"] == "draining", answer
        late = await WsClient.connect(app.ws_url, tokens.issue("late", role="attendee"))
        assert (await late.subscribe("user:late"))["type"] == "subscribed"
        clients.append(late)

        loop = asyncio.get_running_loop()

        async def ws_closed(client: WsClient) -> tuple[int | None, float, bool]:
            closed = await client.closed(timeout=120)
            return closed.code, loop.time(), await refused(app.port)

        async def sse_closed() -> tuple[int | None, float, bool]:
            kicked = await stream.event("kicked", timeout=120)
            return kicked["code"], loop.time(), await refused(app.port)

        closes = await asyncio.gather(*(ws_closed(c) for c in clients), sse_closed())
        assert [code for code, _, _ in closes] == [1001] * len(closes)
        # every close came after the listener had closed
        assert all(was_refused for _, _, was_refused in closes)
        times = sorted(at for _, at, _ in closes)
        # the server spaces 7 closes window/7 apart (6/7 of the window from first to last); a busy
        # machine can only delay single closes, not bunch them all into one moment
        assert times[-1] - times[0] >= window / 4, times
        assert app.proc.wait(60) == 0
        await stream.close()
        output = app.output()
        assert output.index("draining") < output.index("listener closed") < output.index("stopped")
    finally:
        app.stop()


@pytest.mark.gen_test(timeout=180)
async def test_a_stop_that_hangs_ends_after_shutdown_timeout(test_id, tmp_path):
    """The database stops answering (SIGSTOP) while the server stops: the watchdog ends the process
    with code 1 after SHUTDOWN_TIMEOUT instead of letting it hang."""
    database = MongoWireServer()
    database.start()
    app = AppProcess(
        {
            "MONGODB_URL": database.url,
            "MONGODB_DATABASE": test_id,
            "REDIS_URL": "",
            "DATA_DIR": str(tmp_path),
            "SHUTDOWN_TIMEOUT": "2",
        }
    )
    try:
        app.start()
        empty = tmp_path / "empty.toml"
        empty.write_text("")
        tokens = TokenService(load_settings({"JWT_KEYS": TEST_JWT_KEYS}, toml_path=empty))
        client = await WsClient.connect(app.ws_url, tokens.issue("u1", role="attendee"))
        await client.subscribe("user:u1")
        database.proc.send_signal(signal.SIGSTOP)
        app.proc.send_signal(signal.SIGTERM)
        assert app.proc.wait(60) == 1
        assert "shutdown did not finish within SHUTDOWN_TIMEOUT (2 s); exiting" in app.output()
        client.close()
    finally:
        if database.proc is not None:
            database.proc.send_signal(signal.SIGCONT)
        app.stop()
        database.close()


@pytest.mark.gen_test(timeout=180)
async def test_a_second_signal_skips_the_waits(mongo_server, test_id, tmp_path):
    """Ctrl-C twice: a drain of minutes ends at once, every client still closed with 1001."""
    app = AppProcess(
        {
            "MONGODB_URL": mongo_server.url,
            "MONGODB_DATABASE": test_id,
            "REDIS_URL": "",
            "DATA_DIR": str(tmp_path),
            "DRAIN_SECONDS": "600",
            "DRAIN_CLOSE_WINDOW": "600",
            "SHUTDOWN_TIMEOUT": "1500",
        }
    )
    app.start()
    try:
        empty = tmp_path / "empty.toml"
        empty.write_text("")
        tokens = TokenService(load_settings({"JWT_KEYS": TEST_JWT_KEYS}, toml_path=empty))
        clients = [
            await WsClient.connect(app.ws_url, tokens.issue(f"u{i}", role="attendee")) for i in range(3)
        ]
        app.proc.send_signal(signal.SIGINT)
        while (await readyz(app.url))[0] == 200:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        app.proc.send_signal(signal.SIGINT)
        closes = await asyncio.gather(*(c.closed(timeout=60) for c in clients))
        assert [c.code for c in closes] == [1001] * 3
        assert app.proc.wait(60) == 0
    finally:
        app.stop()


@pytest.mark.gen_test(timeout=120)
async def test_a_stop_records_the_leave_of_an_attendee_whose_close_handshake_never_comes(
    mongo_server, test_id, tmp_path, http_client
):
    """The stop closes every live connection and then writes what is pending, attendance included.
    A client that never answers the close frame (here: this test's loop, blocked in ``stop``) has
    not ended when the stop would close the database: the server waits a moment for it, then ends
    it itself, so its leave is written before the database closes (it was lost: left_at None)."""
    from storage import mongo
    from tests.api import Api

    app = AppProcess(
        {"MONGODB_URL": mongo_server.url, "MONGODB_DATABASE": test_id, "DATA_DIR": str(tmp_path)}
    )
    app.start()
    client = mongo.open_client(mongo_server.url)
    try:
        _, guest, w = await Api(http_client, app.url).live_webinar()
        tab = await WsClient.connect(app.url, guest)
        assert (await tab.subscribe(f"room:{w['id']}"))["type"] == "subscribed"
        sessions = client[test_id].attendance

        async def joined() -> bool:  # written behind, once a second
            return await sessions.find_one({"webinar_id": w["id"]}) is not None

        await wait_until(joined)
        assert app.stop(timeout=60) == 0, app.output()[-3000:]  # blocks: the tab cannot answer
        docs = await sessions.find({"webinar_id": w["id"]}).to_list()
        assert len(docs) == 1 and docs[0]["left_at"] is not None, (docs, app.output()[-3000:])
        assert "session closes failed" not in app.output()
        tab.close()
    finally:
        app.stop()
        await client.close()
