"""``python -m handlers.cli create-host`` creates a host who can log in even with sign-up closed."""

import os
import subprocess
import sys

import pytest

from tests.api import Api
from tests.servers import ROOT


def run_cli(env, *args, password="first host password"):
    return subprocess.run(
        [sys.executable, "-m", "handlers.cli", "create-host", *args, "--password-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=60,
    )


@pytest.mark.gen_test(timeout=60)
async def test_create_host_then_login(http_client, base_url, mongo_server, test_id):
    env = {"MONGODB_URL": mongo_server.url, "MONGODB_DATABASE": test_id, "SIGNUP_OPEN": "false"}
    done = run_cli(env, "--email", "First@Example.com", "--name", "First")
    assert done.returncode == 0, done.stderr
    assert "created host first@example.com" in done.stdout
    again = run_cli(env, "--email", "first@example.com")
    assert again.returncode == 1 and "exists" in again.stderr
    short = run_cli(env, "--email", "x@example.com", password="short")
    assert short.returncode == 1 and "password" in short.stderr
    code, body = await Api(http_client, base_url).call(
        "POST", "/api/auth/login", {"email": "first@example.com", "password": "first host password"}
    )
    assert code == 200 and body["user"]["name"] == "First"
