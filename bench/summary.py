"""Median and range of the fan-out figures over several runs:
``python -m bench.summary bench/results/fanout-*.json`` (Markdown table on stdout)."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

FIGURES = [
    ("deliveries_per_s", "deliveries/s", "{:,.0f}"),
    ("server_cpu_s_per_100k", "server CPU-s/100k", "{:.2f}"),
    ("p50_ms", "p50 ms", "{:.0f}"),
    ("p99_ms", "p99 ms", "{:.0f}"),
    ("max_ms", "max ms", "{:.0f}"),
    ("generator_cpu_utilisation", "gen CPU", "{:.0%}"),
    ("foreign_cpu_utilisation", "other CPU", "{:.0%}"),
]


def spread(values: list[float], fmt: str) -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main(paths: list[str]) -> int:
    runs = [json.loads(Path(p).read_text()) for p in paths]
    rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
    memory: dict[str, list[float]] = {}
    ratios = [r["redis_vs_single"] for r in runs if "redis_vs_single" in r]
    for run in runs:
        for s in run["scenarios"]:
            memory.setdefault(s["scenario"], []).append(s["server_bytes_per_idle_conn"] / 1024)
            for p in s["phases"]:
                rows.setdefault((s["scenario"], p["phase"]), []).append(p)
    print(f"{len(runs)} runs; median (min–max)\n")
    print("| scenario | phase | " + " | ".join(title for _, title, _ in FIGURES) + " |")
    print("| --- | --- |" + " ---: |" * len(FIGURES))
    for (scenario, phase), found in rows.items():
        cells = [spread([p[key] for p in found if p.get(key) is not None], fmt) for key, _, fmt in FIGURES]
        print(f"| {scenario} | {phase} | " + " | ".join(cells) + " |")
    print()
    for scenario, kb in memory.items():
        print(f"- {scenario}: {spread(kb, '{:.1f}')} KB server RSS per idle subscribed connection")
    if ratios:
        print(f"- Redis (2 processes) / single process, max deliveries/s: {spread(ratios, '{:.0%}')}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
