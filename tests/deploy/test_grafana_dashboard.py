"""deploy/grafana-dashboard.json and docs/alerts.md: every PromQL expression parses (promql-parser, the
Rust parser's Python binding) and names only metrics this server exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import promql_parser
import pytest

from realtime import metrics
from tests.deploy.artefacts import DEPLOY, ROOT

DASHBOARD = DEPLOY / "grafana-dashboard.json"
ALERTS = ROOT / "docs" / "alerts.md"
SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
}
PROMETHEUS_OWN = {"up"}  # series Prometheus adds to every target


def exported() -> set[str]:
    """Every series name the registry can export, whether or not a labelled child exists yet."""
    return {
        family.name + suffix
        for family in metrics.REGISTRY.collect()
        for suffix in SUFFIXES.get(family.type, ("",))
    }


def selectors(node: Any) -> Iterator[str]:
    """The metric names of every vector selector in a parsed expression."""
    if isinstance(node, promql_parser.VectorSelector):
        yield node.name
        return
    for attr in ("args", "expr", "lhs", "rhs", "param", "vector_selector"):
        child = getattr(node, attr, None)
        for item in child if isinstance(child, list) else [child]:
            if item is not None and not isinstance(item, int | float | str):
                yield from selectors(item)


def parse(expr: str) -> Any:
    # Grafana's interval variable is substituted before Prometheus sees the query.
    return promql_parser.parse(expr.replace("$__rate_interval", "5m"))


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def alert_exprs() -> list[str]:
    return re.findall(r"```promql\n(.*?)\n```", ALERTS.read_text(), flags=re.S)


def test_the_dashboard_is_a_grafana_dashboard():
    doc = json.loads(DASHBOARD.read_text())
    assert doc["title"] and doc["uid"] and isinstance(doc["schemaVersion"], int)
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"
    variables = {v["name"] for v in doc["templating"]["list"]}
    assert {"datasource", "instance"} <= variables


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_expression_parses_and_names_exported_metrics(source):
    exprs = dashboard_exprs() if source == "dashboard" else alert_exprs()
    assert len(exprs) >= 10
    known = exported() | PROMETHEUS_OWN
    for expr in exprs:
        names = list(selectors(parse(expr)))
        assert names, expr
        unknown = [n for n in names if n not in known]
        assert not unknown, f"{expr}: {unknown} not exported"


def test_the_dashboard_shows_every_product_metric():
    shown = {n for e in dashboard_exprs() for n in selectors(parse(e))}
    families = {f.name for f in metrics.REGISTRY.collect() if f.name.startswith("webinar_")}
    missing = [f for f in families if not any(n.startswith(f) for n in shown)]
    assert not missing
