"""Running a benchmark as the smoke tests do: the module in a child process from the project's root,
its JSON results read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_benchmark(module: str, args: list[str], out: Path, timeout: float) -> dict[str, Any]:
    """``python -m module *args --output out``; fails the test with the tail of its output if it
    exits non-zero."""
    run = subprocess.run(
        [sys.executable, "-m", module, *args, "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(out.read_text())
