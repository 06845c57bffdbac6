"""The server process as an operator starts and stops it: ``--help``, bad settings that end with one
line, and the drain on SIGTERM observed from outside."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import FIELDS
from tests.servers import ROOT, free_port


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
