"""The systemd unit, checked by systemd itself: ``systemd-analyze verify`` (syntax, known keys, an
executable ExecStart) and ``systemd-analyze security --offline`` (the hardening's exposure score)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy import artefacts as a

INSTALL_DIR = "/opt/webinar-server"
# systemd-analyze's exposure score, in tenths (0 = locked down, 100 = unprotected); 2.0 is "OK".
MAX_EXPOSURE = 20

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian package: systemd)"
)


def installed_copy(tmp_path: Path, text: str) -> Path:
    """The unit as if installed: its INSTALL_DIR replaced by a temporary one holding a real
    executable python, because verify checks that ExecStart exists."""
    install = tmp_path / "install"
    (install / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(Path(sys.executable).resolve(), install / ".venv" / "bin" / "python")
    assert INSTALL_DIR in text
    unit = tmp_path / a.SYSTEMD_UNIT.name
    unit.write_text(text.replace(INSTALL_DIR, str(install)))
    return unit


def verify(unit: Path) -> list[str]:
    """systemd-analyze verify's complaints about this unit; it exits 0 on unknown keys and bad
    values (it only logs them), so every line naming the unit counts."""
    run = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    lines = (run.stdout + run.stderr).splitlines()
    problems = [line for line in lines if unit.name in line or "webinar-server@" in line]
    if run.returncode != 0 and not problems:
        pytest.skip(f"systemd-analyze verify does not work on this machine: {run.stderr.strip()}")
    return problems


def exposure_above(unit: Path, threshold: int) -> bool:
    run = subprocess.run(
        [SYSTEMD_ANALYZE, "security", "--offline=yes", f"--threshold={threshold}", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "Overall exposure level" not in run.stdout:
        pytest.skip(f"systemd-analyze security --offline does not work here: {run.stderr.strip()}")
    return run.returncode != 0


TEXT = a.SYSTEMD_UNIT.read_text()


def test_the_unit_verifies_cleanly(tmp_path):
    assert verify(installed_copy(tmp_path, TEXT)) == []


@pytest.mark.parametrize(
    "old,new,complaint",
    [
        ("NoNewPrivileges=yes", "NoNewPrivilege=yes", "Unknown key"),
        ("Restart=on-failure", "Restart=on-failur", "restart specifier"),
        ("KillSignal=SIGTERM", "KillSignal=SIGTERMINATE", "signal"),
    ],
    ids=["unknown-key", "bad-restart", "bad-signal"],
)
def test_a_broken_copy_is_refused(tmp_path, old, new, complaint):
    assert old in TEXT
    problems = verify(installed_copy(tmp_path, TEXT.replace(old, new)))
    assert any(complaint in line for line in problems), problems


def test_a_missing_executable_is_refused(tmp_path):
    unit = installed_copy(tmp_path, TEXT)
    (tmp_path / "install" / ".venv" / "bin" / "python").unlink()
    assert any("is not executable" in line for line in verify(unit))


def test_the_hardening_keeps_exposure_low(tmp_path):
    assert not exposure_above(installed_copy(tmp_path, TEXT), MAX_EXPOSURE)


def test_a_copy_without_hardening_is_exposed(tmp_path):
    head, _, tail = TEXT.partition("# Hardening:")
    unhardened = head + "[Install]" + tail.partition("[Install]")[2]
    assert not exposure_above(installed_copy(tmp_path, unhardened), 100)
    assert exposure_above(installed_copy(tmp_path, unhardened), MAX_EXPOSURE)
