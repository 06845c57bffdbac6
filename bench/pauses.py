"""The event loop's pauses during a benchmark phase, read from the app's own ``/metrics``
(``webinar_event_loop_lag_seconds`` and ``webinar_gc_pause_seconds``, realtime/metrics.py): each app
gets a ``METRICS_PORT``; a scrape before and after a phase gives the pauses in it by histogram bucket.
A histogram has no maximum, so the longest pause is reported as the bucket it fell in."""

from __future__ import annotations

import math
import urllib.request
from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client.parser import text_string_to_metric_families

from tests.servers import free_port

LAG = "webinar_event_loop_lag_seconds"
GC = "webinar_gc_pause_seconds"
OVER = 0.02  # the bound: no pause of the loop over 20 ms

Buckets = dict[tuple[str, str], dict[float, float]]  # (metric, generation) -> {upper bound: count}


class HasMetrics(Protocol):
    metrics_port: int | None


def env() -> dict[str, str]:
    """What an app process needs so that its pauses can be read: its own metrics listener."""
    return {"METRICS_PORT": str(free_port())}


def scrape_all(apps: Sequence[HasMetrics]) -> list[Buckets]:
    return [scrape(a.metrics_port) for a in apps if a.metrics_port is not None]


def scrape(port: int) -> Buckets:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
        return parse(resp.read().decode())


def parse(text: str) -> Buckets:
    """The pause histograms of one exposition text (a scrape, or this process's own registry)."""
    found: Buckets = {}
    for family in text_string_to_metric_families(text):
        if family.name not in (LAG, GC):
            continue
        for s in family.samples:
            if s.name.endswith("_bucket"):
                key = (family.name, s.labels.get("generation", ""))
                found.setdefault(key, {})[float(s.labels["le"])] = s.value
    return found


def _spread(before: dict[float, float], after: dict[float, float]) -> list[tuple[float, float]]:
    """(upper bound, pauses in that bucket alone) during the phase, in bucket order."""
    rows, below = [], 0.0
    for bound in sorted(after):
        cumulative = after[bound] - before.get(bound, 0.0)
        rows.append((bound, cumulative - below))
        below = cumulative
    return rows


def _longest(rows: list[tuple[float, float]]) -> str:
    """The bucket of the longest pause, as "(a, b] ms"."""
    previous = 0.0
    found = "none"
    for bound, n in rows:
        if n > 0:
            high = "inf" if math.isinf(bound) else f"{bound * 1000:g}"
            found = f"({previous * 1000:g}, {high}] ms"
        previous = bound
    return found


def summary(before: list[Buckets], after: list[Buckets]) -> dict[str, Any]:
    """Over every app: loop lags above 20 ms and the longest one's bucket; collections per
    generation, with the longest full collection's bucket."""
    lag: dict[float, float] = {}
    gcs: dict[str, dict[float, float]] = {}
    for b, a in zip(before, after, strict=True):
        for (metric, gen), counts in a.items():
            for bound, n in _spread(b.get((metric, gen), {}), counts):
                target = lag if metric == LAG else gcs.setdefault(gen, {})
                target[bound] = target.get(bound, 0.0) + n
    lag_rows = sorted(lag.items())
    full = sorted(gcs.get("2", {}).items())
    return {
        "loop_lags_over_20ms": int(sum(n for bound, n in lag_rows if bound > OVER)),
        "longest_loop_lag": _longest(lag_rows),
        "collections": {gen: int(sum(rows.values())) for gen, rows in sorted(gcs.items())},
        "longest_full_collection": _longest(full),
    }
