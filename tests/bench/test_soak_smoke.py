"""The soak benchmark as a tool: a short run with 50 connections samples memory and loses nothing.

A functional check of bench/soak.py, not a timed assertion."""

from __future__ import annotations

from pathlib import Path

from tests.bench.tool import run_benchmark


def test_a_short_soak_samples_memory_and_delivers_every_broadcast(tmp_path: Path) -> None:
    results = run_benchmark(
        "bench.soak",
        ["--connections", "50", "--minutes", "0.1", "--sample", "2", "--warm", "0"],
        tmp_path / "soak.json",
        timeout=180,
    )
    assert results["connections"] == 50 and results["closed"] == 0
    assert len(results["samples"]) >= 2
    for sample in results["samples"]:
        assert sample["published"] >= 1 and sample["lost"] == 0 and sample["publish_errors"] == 0, sample
        assert sample["app_rss_mib"] > 0 and sample["db_rss_mib"] > 0
        longest = sample["pauses"]["longest_loop_lag"]
        assert longest == "none" or longest.endswith("] ms"), longest
    assert results["kb_per_connection"] > 0
    assert -1 < results["growth_after_warm"] < 10
