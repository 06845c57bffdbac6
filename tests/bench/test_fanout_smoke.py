"""The fan-out benchmark as a tool: a --quick run with 50 subscribers produces every figure.

A functional check of bench/fanout.py, not a timed assertion: the numbers only have to be sane.
"""

from __future__ import annotations

from pathlib import Path

from tests.bench.tool import run_benchmark


def test_quick_run_reports_every_figure(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench.fanout",
        ["--quick", "--subscribers", "50", "--duration", "1", "--rates", "2000,10000"],
        tmp_path / "fanout.json",
        timeout=120,
    )
    assert results["machine"]["nproc"] >= 1
    assert "core" in results["layout"] or "not pinned" in results["layout"]
    assert [s["scenario"] for s in results["scenarios"]] == ["bare", "single", "redis"]
    assert 0 < results["redis_vs_single"]
    # every product phase beside the bare peer's phase of the same rate, measured in this run
    for scenario in ("single", "redis"):
        ratios = results["over_bare"][scenario]
        assert set(ratios) >= {"max, ephemeral", "2,000/s, ephemeral", "10,000/s, ephemeral"}, ratios
        for r in ratios.values():
            assert r["server_cpu_s_per_100k"] > 0 and r["p99_ms"] > 0, r
    for scenario in results["scenarios"]:
        bare = scenario["scenario"] == "bare"
        assert scenario["generator"]["ready"] == 50
        assert scenario["generator"]["closed"] == 0
        assert scenario["server_bytes_per_idle_conn"] > 0
        phases = {p["phase"]: p for p in scenario["phases"]}
        for phase in ("max, ephemeral", "2,000/s, ephemeral", "10,000/s, ephemeral"):
            assert phase in phases
        if scenario["scenario"] == "single":
            assert "max, durable" in phases and "2,000/s, durable" in phases
        for phase in phases.values():
            assert phase["published"] > 0 and phase["publish_errors"] == 0, phase
            assert phase["deliveries"] > 0 and phase["deliveries"] == phase["expected_deliveries"], phase
            assert phase["deliveries_per_s"] > 0
            assert phase["server_cpu_s_per_100k"] > 0
            assert phase["generator_cpu_s"] > 0
            assert 0 <= phase["p50_ms"] <= phase["p99_ms"] <= phase["max_ms"] < 60_000, phase
            if bare:  # it has no metrics listener
                continue
            # the app's own pause histograms, read over its metrics listener around the phase
            assert phase["pauses"]["loop_lags_over_20ms"] >= 0
            assert phase["pauses"]["longest_loop_lag"].endswith("] ms"), phase["pauses"]
            assert set(phase["pauses"]["collections"]) == {"0", "1", "2"}
        if not bare:
            assert sum(scenario["connect_pauses"]["collections"].values()) > 0  # 50 connections allocate
