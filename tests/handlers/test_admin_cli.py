"""Every admin command against a running server on the embedded database, as an operator runs them:
``python -m handlers.cli ...`` in its own process with the server's settings, over real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ROOT, AppProcess
from tests.storage.test_embedded import secantus_on, wait_until

INTEGRATOR_KEY = "integrator-secret-for-the-admin-test-0123456789"


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "handlers.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=120,
    )


def call(base: str, method: str, path: str, body: Any = None, token: str = "") -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def login(base: str, email: str, password: str) -> tuple[int, Any]:
    return call(base, "POST", "/api/auth/login", {"email": email, "password": password})


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppProcess, dict[str, str]]]:
    """One server on the embedded database, sign-up closed; the env the admin commands run with."""
    data = tmp_path_factory.mktemp("admin-data")
    env = {
        "DATA_DIR": str(data),
        "MONGODB_URL": "",
        "REDIS_URL": "",
        "SIGNUP_OPEN": "false",
        "LOGIN_RATE": "1000",
        "INTEGRATOR_KEYS": f"ik1:{INTEGRATOR_KEY}",
    }
    app = AppProcess(env)
    app.start()
    yield app, env
    assert app.stop() == 0
    assert wait_until(lambda: not secantus_on(data / "mongo"))


def test_create_and_list_hosts_while_the_server_runs(running):
    app, env = running
    made = cli(
        env,
        "create-host",
        "--email",
        "Admin@Example.com",
        "--name",
        "Ada",
        "--password-stdin",
        stdin="first host password\n",
    )
    assert made.returncode == 0, made.stderr
    assert "created host admin@example.com" in made.stdout
    assert len(secantus_on(Path(env["DATA_DIR"]) / "mongo")) == 1, "the command started a second database"
    code, body = login(app.url, "admin@example.com", "first host password")
    assert code == 200 and body["user"]["name"] == "Ada"
    again = cli(env, "create-host", "--email", "admin@example.com", "--password-stdin", stdin="x" * 12 + "\n")
    assert again.returncode == 1 and "exists" in again.stderr
    listed = cli(env, "list-hosts", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["email"], r["name"], r["disabled"]) for r in rows] == [("admin@example.com", "Ada", False)]
    assert call(app.url, "GET", "/readyz")[0] == 200  # the server's database is still there


def test_disable_host_refuses_login_and_revokes_its_tokens(running):
    app, env = running
    email, password = "disabled@example.com", "disabled host password"
    made = cli(env, "create-host", "--email", email, "--password-stdin", stdin=password + "\n")
    assert made.returncode == 0, made.stderr
    code, tokens = login(app.url, email, password)
    assert code == 200
    assert call(app.url, "GET", "/api/me", token=tokens["access_token"])[0] == 200

    done = cli(env, "disable-host", "--email", email)
    assert done.returncode == 0, done.stderr
    code, body = login(app.url, email, password)
    assert (code, body["error"]["code"]) == (403, "account_disabled")
    code, body = call(app.url, "GET", "/api/me", token=tokens["access_token"])
    assert (code, body["error"]["code"]) == (401, "token_revoked")
    code, body = call(app.url, "POST", "/api/auth/refresh", {"refresh_token": tokens["refresh_token"]})
    assert (code, body["error"]["code"]) == (401, "refresh_invalid")
    assert json.loads(cli(env, "list-hosts", "--json").stdout)[-1]["disabled"] is True

    assert cli(env, "enable-host", "--email", email).returncode == 0
    code, fresh = login(app.url, email, password)
    assert code == 200
    assert call(app.url, "GET", "/api/me", token=fresh["access_token"])[0] == 200
    unknown = cli(env, "disable-host", "--email", "nobody@example.com")
    assert unknown.returncode == 1 and "no host account" in unknown.stderr


def test_reset_password_revokes_earlier_tokens(running):
    app, env = running
    email = "reset@example.com"
    assert (
        cli(env, "create-host", "--email", email, "--password-stdin", stdin="old password 1\n").returncode
        == 0
    )
    code, old = login(app.url, email, "old password 1")
    assert code == 200
    done = cli(env, "reset-password", "--email", email, "--password-stdin", stdin="new password 2\n")
    assert done.returncode == 0, done.stderr
    assert login(app.url, email, "old password 1")[0] == 401
    code, body = call(app.url, "GET", "/api/me", token=old["access_token"])
    assert (code, body["error"]["code"]) == (401, "token_revoked")
    code, new = login(app.url, email, "new password 2")
    assert code == 200
    assert call(app.url, "GET", "/api/me", token=new["access_token"])[0] == 200
    short = cli(env, "reset-password", "--email", email, "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "password" in short.stderr


def test_mint_token_is_accepted_by_the_server(running):
    app, env = running
    minted = cli(env, "mint-token", "--sub", "crm-42", "--name", "Grace", "--ttl", "600")
    assert minted.returncode == 0, minted.stderr
    code, me = call(app.url, "GET", "/api/me", token=minted.stdout.strip())
    assert code == 200 and (me["id"], me["role"], me["name"]) == ("ext:crm-42", "attendee", "Grace")
    bad_kid = cli(env, "mint-token", "--sub", "x", "--kid", "nope")
    assert bad_kid.returncode == 2 and "no key 'nope'" in bad_kid.stderr
    none = cli({**env, "INTEGRATOR_KEYS": ""}, "mint-token", "--sub", "x")
    assert none.returncode == 2 and "INTEGRATOR_KEYS" in none.stderr


def test_check_config_masks_secrets_and_fails_when_invalid(running):
    _, env = running
    secret_env = {**env, "REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"}
    checked = cli(secret_env, "check-config")
    assert checked.returncode == 0, checked.stderr
    assert "INTEGRATOR_KEYS=ik1:**********" in checked.stdout.splitlines()
    assert "REDIS_URL=redis://:**********@127.0.0.1:1/0" in checked.stdout.splitlines()
    assert INTEGRATOR_KEY not in checked.stdout and "hunter2" not in checked.stdout
    as_json = json.loads(cli(env, "check-config", "--json").stdout)
    assert as_json["SIGNUP_OPEN"] == "false" and as_json["JOB_RETENTION_DAYS"] == "14"
    bad = cli({**env, "REMINDER_OFFSETS": "15,-5"}, "check-config")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [bad.stderr.strip()] and "REMINDER_OFFSETS" in bad.stderr


def test_apply_retention_while_the_server_runs(running):
    app, env = running
    done = cli({**env, "INBOX_RETENTION_DAYS": "30"}, "apply-retention")
    assert done.returncode == 0, done.stderr
    assert "inbox: deleted 0" in done.stdout and "jobs: deleted" in done.stdout
    forever = cli({**env, "JOB_RETENTION_DAYS": "0"}, "apply-retention")
    assert forever.returncode == 0 and "nothing deleted" in forever.stdout
    assert call(app.url, "GET", "/readyz")[0] == 200


def test_a_command_without_a_running_server_starts_and_stops_its_own_database(tmp_path):
    env = {"DATA_DIR": str(tmp_path), "MONGODB_URL": "", "REDIS_URL": ""}
    made = cli(env, "create-host", "--email", "solo@example.com", "--password-stdin", stdin="solo password\n")
    assert made.returncode == 0, made.stderr
    assert not secantus_on(tmp_path / "mongo")
    listed = cli(env, "list-hosts")
    assert listed.returncode == 0 and listed.stdout.startswith("solo@example.com\t")
    assert not secantus_on(tmp_path / "mongo")


def test_backup_while_running_then_restore_into_a_new_data_dir(running, tmp_path):
    app, env = running
    email = "backup@example.com"
    assert (
        cli(env, "create-host", "--email", email, "--password-stdin", stdin="backed up pw\n").returncode == 0
    )
    archive = tmp_path / "backups" / "webinar.tar.gz"
    done = cli(env, "backup", "--output", str(archive))
    assert done.returncode == 0, done.stderr
    assert archive.is_file() and f"wrote {archive}" in done.stdout
    again = cli(env, "backup", "--output", str(archive))
    assert again.returncode == 1 and "exists" in again.stderr
    refused = cli(env, "restore", "--archive", str(archive))
    assert refused.returncode == 1 and "stop the server first" in refused.stderr
    assert call(app.url, "GET", "/readyz")[0] == 200

    other = {**env, "DATA_DIR": str(tmp_path / "restored")}
    (tmp_path / "restored" / "mongo").mkdir(parents=True)
    (tmp_path / "restored" / "mongo" / "something").write_text("an earlier database")
    restored = cli(other, "restore", "--archive", str(archive))
    assert restored.returncode == 0, restored.stderr
    assert "moved to" in restored.stdout
    kept = [p for p in (tmp_path / "restored").iterdir() if p.name.startswith("mongo.before-restore-")]
    assert len(kept) == 1 and (kept[0] / "something").read_text() == "an earlier database"
    second = AppProcess(other)
    second.start()
    try:
        assert login(second.url, email, "backed up pw")[0] == 200
    finally:
        assert second.stop() == 0
    with_mongo = cli(
        {**env, "MONGODB_URL": "mongodb://127.0.0.1:1/"}, "backup", "--output", str(tmp_path / "x")
    )
    assert with_mongo.returncode == 2 and "mongodump" in with_mongo.stderr


def test_a_copy_of_the_data_directory_made_while_stopped_starts_with_the_data(tmp_path):
    env = {"DATA_DIR": str(tmp_path / "live"), "MONGODB_URL": "", "REDIS_URL": "", "SIGNUP_OPEN": "false"}
    live = AppProcess(env)
    live.start()
    made = cli(env, "create-host", "--email", "cold@example.com", "--password-stdin", stdin="cold copy pw\n")
    assert made.returncode == 0, made.stderr
    # the documented procedure: stop the server (SIGTERM), copy DATA_DIR/mongo, start on the copy
    assert live.stop() == 0
    shutil.copytree(tmp_path / "live" / "mongo", tmp_path / "copy" / "mongo")
    app = AppProcess({**env, "DATA_DIR": str(tmp_path / "copy")})
    app.start()
    try:
        assert login(app.url, "cold@example.com", "cold copy pw")[0] == 200
    finally:
        assert app.stop() == 0


@pytest.mark.gen_test(timeout=120)
async def test_disable_host_closes_its_live_connections_on_a_server_with_redis(
    mongo_server, redis_server, test_id
):
    from tests.wsclient import WsClient

    env = {
        "MONGODB_URL": mongo_server.url,
        "MONGODB_DATABASE": test_id,
        "REDIS_URL": redis_server.url,
        "REDIS_PREFIX": f"{test_id}:",
    }
    app = AppProcess(env)
    app.start()
    try:
        email = "live@example.com"
        made = cli(env, "create-host", "--email", email, "--password-stdin", stdin="live host pw\n")
        assert made.returncode == 0, made.stderr
        code, tokens = login(app.url, email, "live host pw")
        assert code == 200
        live = await WsClient.connect(app.ws_url + "/ws", tokens["access_token"])
        done = cli(env, "disable-host", "--email", email)
        assert done.returncode == 0, done.stderr
        assert "closed (4003) on every server process" in done.stdout
        assert (await live.closed()).code == 4003
    finally:
        assert app.stop() == 0
