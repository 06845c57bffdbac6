"""The joins benchmark as a tool: a run with 30 clients produces every figure for both targets.

A functional check of bench/joins.py, not a timed assertion: the numbers only have to be sane.
"""

from __future__ import annotations

from pathlib import Path

from tests.bench.tool import run_benchmark


def test_small_run_reports_every_figure(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench.joins", ["--clients", "30", "--settle", "0.2"], tmp_path / "joins.json", timeout=300
    )
    [only] = results["runs"]
    assert len(only["load_average"]) == 3
    assert [t["target"] for t in only["targets"]] == ["bare", "product"]
    for target in only["targets"]:
        phases = {p["phase"]: p for p in target["phases"]}
        assert set(phases) == {"join storm", "reconnect after restart"}
        for phase in phases.values():
            assert phase["generator"]["ready"] == 30 and phase["refused"] == 0, phase
            assert phase["joins_per_s"] > 0 and phase["server_cpu_ms_per_join"] >= 0
            assert phase["healthz"]["failures"] == 0, phase
            assert 0 <= phase["healthz"]["p50_ms"] <= phase["healthz"]["max_ms"]
    for ratio in only["ratios"].values():
        assert ratio["joins_per_s_product_over_bare"] > 0
