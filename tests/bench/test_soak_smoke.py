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
    assert results["connections"] == 50
    assert [t["target"] for t in results["targets"]] == ["bare", "product"]
    for target in results["targets"]:
        product = target["target"] == "product"
        assert target["closed"] == 0 and len(target["samples"]) >= 2
        for sample in target["samples"]:
            assert sample["published"] >= 1 and sample["lost"] == 0 and sample["publish_errors"] == 0, sample
            assert sample["app_rss_mib"] > 0
            assert (sample["db_rss_mib"] > 0) if product else sample["db_rss_mib"] is None
            longest = sample["pauses"]["longest_loop_lag"]
            assert longest == "none" or longest.endswith("] ms"), longest
        assert target["kb_per_connection"] > 0
        assert -1 < target["growth_after_warm"] < 10
        assert 0 <= target["median_p50_ms"] <= target["median_p99_ms"]
    ratios = results["product_over_bare"]  # the product beside the bare peer of the same run
    assert ratios["median_p99_ms"] > 0 and ratios["kb_per_connection"] > 0
