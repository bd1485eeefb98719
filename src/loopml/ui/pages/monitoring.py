"""Monitoring: per monitor, the drift of each feature over its windows as a heat map (feature x window, each
cell coloured by its score against its threshold; a cell links to the reference and window distributions),
realised metrics over time with the label delay, contract violations, and the alerts."""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from loopml.domain.monitoring import MonitorWindow
from loopml.monitoring import MonitoringService
from loopml.ui.framework import Session, UiRoute, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

MAX_WINDOWS = 60
"""Windows on one heat map (the newest); older ones are in the REST API and the HTML report."""
LEVELS = 5


@dataclass(frozen=True)
class Cell:
    window: int
    feature: str
    score: float | None
    threshold: float | None
    drifted: bool
    method: str

    @property
    def level(self) -> int:
        """0 (far below the threshold) .. LEVELS - 1 (at or above it): the cell's colour class."""
        if self.score is None or self.threshold is None or not math.isfinite(self.score) or self.threshold <= 0:
            return -1
        if self.drifted:
            return LEVELS - 1
        return min(LEVELS - 2, int(self.score / self.threshold * (LEVELS - 1)))

    @property
    def title(self) -> str:
        if self.score is None:
            return f"{self.feature}: no score"
        verdict = "drifted" if self.drifted else "no drift"
        return f"{self.feature}: {self.method} {self.score:.4g} against {self.threshold:.4g} ({verdict})"


def heat_map(windows: list[MonitorWindow]) -> tuple[list[str], list[list[Cell]]]:
    """The features (rows) and, per feature, one cell per window (columns, oldest first)."""
    features: list[str] = []
    scores: dict[tuple[str, int], Cell] = {}
    for window in windows:
        for column in (window.drift or {}).get("columns", []):
            name = str(column.get("column"))
            if name not in features:
                features.append(name)
            score = column.get("score")
            scores[(name, window.start_time)] = Cell(
                window.start_time,
                name,
                float(score) if isinstance(score, int | float) else None,
                float(column["threshold"]) if isinstance(column.get("threshold"), int | float) else None,
                bool(column.get("drifted")),
                str(column.get("method", "")),
            )
    rows = [
        [scores.get((name, w.start_time)) or Cell(w.start_time, name, None, None, False, "") for w in windows]
        for name in features
    ]
    return features, rows


def metric_series(windows: list[MonitorWindow]) -> dict[str, list[tuple[int, float]]]:
    """Each realised metric over the windows that have it: (window start, value)."""
    series: dict[str, list[tuple[int, float]]] = {}
    for window in windows:
        for name, value in ((window.performance or {}).get("metrics") or {}).items():
            if isinstance(value, int | float) and math.isfinite(value):
                series.setdefault(str(name), []).append((window.start_time, float(value)))
    return series


def polyline(
    points: list[tuple[int, float]], width: int = 600, height: int = 120
) -> list[tuple[float, float, int, float]]:
    """SVG coordinates of `points` scaled into width x height (with a margin): (x, y, time, value)."""
    if not points:
        return []
    times = [p[0] for p in points]
    values = [p[1] for p in points]
    t0, t1 = min(times), max(times)
    v0, v1 = min(values), max(values)
    span_t, span_v = (t1 - t0) or 1, (v1 - v0) or 1.0
    return [
        (10 + (t - t0) / span_t * (width - 20), height - 10 - (v - v0) / span_v * (height - 20), t, v)
        for t, v in points
    ]


def distribution(window: MonitorWindow | None, feature: str | None) -> dict[str, Any] | None:
    """The reference and window shares of `feature` in `window` (bins or categories), with bar geometry."""
    if window is None or feature is None:
        return None
    found = ((window.drift or {}).get("histograms") or {}).get(feature)
    if not isinstance(found, dict):
        return None
    reference = [float(v) for v in found.get("reference", [])]
    current = [float(v) for v in found.get("current", [])]
    if found.get("kind") == "numeric":
        edges = [float(e) for e in found.get("edges", [])]
        labels = [f"< {edges[0]:.4g}"] if edges else ["all"]
        labels += [f"{a:.4g} to {b:.4g}" for a, b in itertools.pairwise(edges)]
        labels += [f">= {edges[-1]:.4g}"] if edges else []
    else:
        labels = [str(label) for label in found.get("labels", [])]
    top = max([*reference, *current, 1e-12])
    bars = [
        {"label": label, "reference": r, "current": c, "ref_height": r / top * 100, "cur_height": c / top * 100}
        for label, r, c in zip(labels, reference, current, strict=False)
    ]
    return {"feature": feature, "kind": found.get("kind"), "bars": bars}


@router.get("/monitors")
def monitors(request: Request, session: Session) -> Response:
    monitoring: MonitoringService = request.app.state.monitoring
    found = monitoring.list_monitors(session.principal)
    open_alerts = monitoring.alerts(session.principal, state="open")
    counts = {m.name: sum(a.monitor == m.name for a in open_alerts) for m in found}
    return render(request, session, "monitors.html", monitors=found, open_alerts=counts)


@router.get("/monitors/{name}")
def monitor(
    request: Request, session: Session, name: str, window: int | None = None, feature: str | None = None
) -> Response:
    monitoring: MonitoringService = request.app.state.monitoring
    found = monitoring.get_monitor(session.principal, name)
    windows = monitoring.windows(session.principal, name, MAX_WINDOWS)
    features, rows = heat_map(windows)
    selected = next((w for w in windows if w.start_time == window), None)
    series = {metric: polyline(points) for metric, points in metric_series(windows).items()}
    now = int(time.time() * 1000)
    delay_ms = found.label_delay_seconds * 1000
    return render(
        request,
        session,
        "monitor.html",
        monitor=found,
        windows=windows,
        features=features,
        rows=rows,
        selected=selected,
        chosen_feature=feature,
        distribution=distribution(selected, feature),
        series=series,
        waiting={w.start_time for w in windows if w.performance is None and w.end_time + delay_ms > now},
        alerts=monitoring.alerts(session.principal, monitor=name),
    )
