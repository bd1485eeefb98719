"""`deploy/grafana/loopml-serving.json`: an importable dashboard whose queries name only series loopml exposes.

The exposed series are read from the source (every prometheus_client collector named `loopml_*`, with its
labels), so renaming a metric or a label without updating the dashboard fails here, not on a blank panel.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "loopml-serving.json"
SOURCE = ROOT / "src" / "loopml"

PENDING = {"loopml_drift_score": {"deployment", "feature"}, "loopml_model_metric": {"deployment", "metric", "version"}}
"""Monitoring series the dashboard already charts but no module exposes yet (issue 5's monitor scheduler).
Once one is exposed, `test_pending_series_are_really_pending` fails: then delete it here."""

COLLECTOR = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary)\(\s*\"(loopml_\w+)\",\s*(?:\"[^\"]*\"\s*)+,\s*\[([^\]]*)\]", re.DOTALL
)
SUFFIXES = {
    "Counter": ("_total",),
    "Gauge": ("",),
    "Histogram": ("_bucket", "_sum", "_count"),
    "Summary": ("_sum", "_count", ""),
}
SCRAPE_LABELS = {"job", "instance"}
IDENTIFIER = re.compile(r"\b(loopml_\w+)\b")
SELECTOR = re.compile(r"\b(loopml_\w+)\{([^}]*)\}")
MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def exposed_series() -> dict[str, set[str]]:
    """Every series name loopml's collectors produce, with the labels each carries."""
    series: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        for kind, name, labels in COLLECTOR.findall(path.read_text()):
            base = name.removesuffix("_total") if kind == "Counter" else name
            label_set = set(re.findall(r"\"(\w+)\"", labels)) | SCRAPE_LABELS
            for suffix in SUFFIXES[kind]:
                series[base + suffix] = label_set | ({"le"} if suffix == "_bucket" else set())
    return series


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for panel in panels:
        found.append(panel)
        found += all_panels(panel.get("panels", []))
    return found


def queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target and every templating query."""
    found = [
        (panel["title"], target["expr"])
        for panel in all_panels(dashboard()["panels"])
        for target in panel.get("targets", [])
    ]
    found += [(f"${v['name']}", v["definition"]) for v in dashboard()["templating"]["list"] if v["type"] == "query"]
    return found


def test_collectors_are_found_in_the_source() -> None:
    series = exposed_series()
    for name in ("loopml_requests_total", "loopml_request_duration_seconds_bucket", "loopml_requests_in_flight"):
        assert name in series
    assert {"deployment", "model", "version", "status"} <= series["loopml_requests_total"]


def test_dashboard_is_importable_json() -> None:
    board = dashboard()
    assert board["title"] and board["uid"] and isinstance(board["schemaVersion"], int)
    [source] = board["__inputs"]
    assert (source["name"], source["type"], source["pluginId"]) == ("DS_PROMETHEUS", "datasource", "prometheus")
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["deployment"]["type"] == "query" and variables["deployment"]["multi"]
    for panel in all_panels(board["panels"]):
        assert {"id", "type", "title", "gridPos"} <= panel.keys(), panel.get("title")
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]


def test_panel_ids_are_unique() -> None:
    ids = [panel["id"] for panel in all_panels(dashboard()["panels"])]
    assert len(ids) == len(set(ids))
    assert all(isinstance(i, int) and i > 0 for i in ids)


def test_dashboard_covers_the_serving_signals() -> None:
    expressions = " ".join(expr for _, expr in queries())
    for needle in (
        "loopml_requests_total",
        'status=~"5..',
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        "loopml_requests_in_flight",
        "loopml_batch_size",
        "loopml_drift_score",
        "loopml_model_metric",
    ):
        assert needle in expressions, needle


@pytest.mark.parametrize(("title", "expr"), queries())
def test_queries_name_only_exposed_series_and_labels(title: str, expr: str) -> None:
    series = {**exposed_series(), **PENDING}
    names = set(IDENTIFIER.findall(expr))
    assert names, f"{title}: no loopml series in {expr}"
    unknown = names - series.keys()
    assert not unknown, f"{title}: {sorted(unknown)} are not exposed by any loopml collector"
    for name, matchers in SELECTOR.findall(expr):
        for label in MATCHER.findall(matchers):
            assert label in series[name], f"{title}: {name} has no label {label!r}"
    available = set().union(*(series[name] for name in names))
    for group in GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in group.split(","))):
            assert label in available, f"{title}: groups by {label!r}, which {sorted(names)} do not carry"
    for variable in re.findall(r"\$(\w+)", expr):
        assert variable.startswith("__") or variable in {v["name"] for v in dashboard()["templating"]["list"]}


def test_pending_series_are_really_pending() -> None:
    assert not PENDING.keys() & exposed_series().keys(), "a pending series is exposed now: drop it from PENDING"
