"""The monitoring report: one self-contained HTML file (inline CSS and SVG, no script, no external URL).

Per feature: reference vs current distribution (from the profile's bins and the latest window), and the drift
score over time against its threshold. Then realised performance over time against its baseline (the
registration metric by default), and a table of every window. Where the serving version changed, the charts
draw a vertical line and the table marks the window.
"""

from __future__ import annotations

import datetime
import html
import math
from collections.abc import Sequence
from typing import Any

from loopml.data import Profile
from loopml.domain.monitoring import Monitor, MonitorWindow
from loopml.monitoring.baselines import version_changes

__all__ = ["render_report"]

REFERENCE = "#8da0cb"
CURRENT = "#fc8d62"
LINE = "#1f77b4"
ALARM = "#d62728"
OK = "#2ca02c"
WIDTH, HEIGHT, PAD = 420, 180, 34

_CSS = """
body{font-family:-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;background:#fafafa;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:2px solid #ddd;padding-bottom:.3rem}
.meta{color:#666;margin-bottom:1.2rem}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px rgba(0,0,0,.08)}
th,td{padding:.45rem .7rem;border-bottom:1px solid #eee;text-align:left;font-variant-numeric:tabular-nums}
th{background:#f0f2f5;font-weight:600}tr.drifted td{background:#fdecea}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.8rem;font-size:.8rem;color:#fff}
.bad{background:#d62728}.good{background:#2ca02c}.none{background:#999}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(460px,1fr));gap:1rem}
.card{background:#fff;padding:.8rem;box-shadow:0 1px 2px rgba(0,0,0,.08);border-radius:6px}
.card h3{margin:.2rem 0 .5rem;font-size:1.05rem}.legend{font-size:.8rem;color:#555}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 .8rem;vertical-align:middle}
svg text{font-size:10px;fill:#555}
"""


def render_report(monitor: Monitor, windows: Sequence[MonitorWindow], profile: Profile | None) -> str:
    """The HTML of the report of `monitor` over `windows` (oldest first)."""
    judged = [w for w in windows if w.drift and "columns" in w.drift]
    latest = judged[-1] if judged else None
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>loopml monitor {_e(monitor.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Monitor <code>{_e(monitor.name)}</code></h1>",
        f"<div class='meta'>deployment <b>{_e(monitor.deployment)}</b> &middot; window {_e(_window_spec(monitor))}"
        f" &middot; label delay {monitor.label_delay_seconds}s &middot; alert after {monitor.consecutive} "
        f"consecutive breaching windows &middot; {len(windows)} windows &middot; generated "
        f"{_e(_time(int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)))}</div>",
    ]
    parts.append(_summary(latest))
    parts.append("<h2>Features</h2>")
    parts.append(_legend())
    parts.append("<div class='grid'>")
    if latest is not None and latest.drift is not None:
        histograms = latest.drift.get("histograms", {})
        for column in _columns(latest.drift):
            name = column["column"]
            parts.append(
                "<div class='card'>"
                f"<h3>{_e(name)} {_badge(column.get('drifted'))}</h3>"
                f"{_histogram(histograms.get(name))}"
                f"{_score_chart(name, judged)}</div>"
            )
    else:
        parts.append("<p>No window has been compared with a reference profile yet.</p>")
    parts.append("</div>")
    parts.append("<h2>Performance</h2>")
    parts.append(_performance(windows))
    parts.append("<h2>Windows</h2>")
    parts.append(_window_table(windows))
    if profile is not None:
        parts.append(
            f"<p class='meta'>Reference profile: {profile.row_count} rows, built {_e(profile.created_at)}.</p>"
        )
    parts.append("</body></html>")
    return "".join(parts)


def _summary(latest: MonitorWindow | None) -> str:
    if latest is None or latest.drift is None:
        return "<p>No drift results yet: run the monitor once its first window is complete.</p>"
    drift = latest.drift
    rows = []
    for column in sorted(drift["columns"], key=lambda c: (not c.get("drifted"), c["column"])):
        rows.append(
            f"<tr class='{'drifted' if column.get('drifted') else ''}'><td>{_e(column['column'])}</td>"
            f"<td>{_e(column.get('method'))}</td><td>{_num(column.get('score'))}</td>"
            f"<td>{_num(column.get('threshold'))}</td><td>{_badge(column.get('drifted'))}</td></tr>"
        )
    verdict = _badge(drift.get("drifted"), "dataset drift", "no dataset drift")
    return (
        f"<h2>Latest window: {_e(_time(latest.start_time))} to {_e(_time(latest.end_time))}</h2>"
        f"<p>{verdict} {_num(drift.get('drifted_share'))} of features drifted "
        f"(threshold {_num(drift.get('share_threshold'))}); {latest.rows} requests; model "
        f"{_e(latest.model)} v{_e(latest.version)}</p>"
        "<table><tr><th>feature</th><th>method</th><th>score</th><th>threshold</th><th>verdict</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _legend() -> str:
    return (
        "<p class='legend'>"
        f"<span class='swatch' style='background:{REFERENCE}'></span>reference (training data)"
        f"<span class='swatch' style='background:{CURRENT}'></span>current (latest window)"
        f"<span class='swatch' style='background:{LINE}'></span>drift score over time"
        f"<span class='swatch' style='background:{ALARM}'></span>threshold</p>"
    )


def _histogram(data: dict[str, Any] | None) -> str:
    if not data:
        return "<p class='legend'>no distribution for this column</p>"
    reference = [float(v) for v in data["reference"]]
    current = [float(v) for v in data["current"]]
    if data["kind"] == "numeric":
        edges = data["edges"]
        labels = [f"<{_short(edges[0])}"] + [_short(e) for e in edges[:-1]] + [f">={_short(edges[-1])}"]
    else:
        labels = [str(v) for v in data["labels"]]
    top = max([*reference, *current, 1e-9])
    n = len(reference)
    inner = WIDTH - 2 * PAD
    slot = inner / max(n, 1)
    bar = slot * 0.4
    shapes = [_axes()]
    for i, (r, c) in enumerate(zip(reference, current, strict=False)):
        x = PAD + i * slot + slot * 0.1
        for offset, value, colour in ((0.0, r, REFERENCE), (bar, c, CURRENT)):
            height = (HEIGHT - 2 * PAD) * value / top
            shapes.append(
                f"<rect x='{x + offset:.1f}' y='{HEIGHT - PAD - height:.1f}' width='{bar:.1f}' "
                f"height='{height:.1f}' fill='{colour}'><title>{_e(labels[i] if i < len(labels) else '')}: "
                f"{value:.1%}</title></rect>"
            )
        if n <= 16 and i < len(labels):
            shapes.append(
                f"<text x='{x + bar:.1f}' y='{HEIGHT - PAD + 12}' text-anchor='middle'>{_e(labels[i][:8])}</text>"
            )
    what = "share per reference-quantile bin" if data["kind"] == "numeric" else "share per category"
    shapes.append(f"<text x='4' y='{PAD - 8}'>{what} (max {top:.0%})</text>")
    return _svg(shapes)


def _score_chart(name: str, windows: Sequence[MonitorWindow]) -> str:
    points: list[tuple[int, float]] = []
    threshold = None
    for window in windows:
        assert window.drift is not None
        for column in _columns(window.drift):
            score = column.get("score")
            if column["column"] == name and isinstance(score, int | float) and math.isfinite(score):
                points.append((window.start_time, float(score)))
                threshold = column.get("threshold")
    return _line_chart(points, threshold, "drift score", column_is_test=_is_test(name, windows))


def _columns(drift: dict[str, Any]) -> list[dict[str, Any]]:
    """The feature columns of a drift report, then the prediction column (when the window had one)."""
    columns: list[dict[str, Any]] = list(drift.get("columns", []))
    if drift.get("prediction"):
        columns.append(drift["prediction"])
    return columns


def _is_test(name: str, windows: Sequence[MonitorWindow]) -> bool:
    for window in reversed(windows):
        for column in _columns(window.drift or {}):
            if column["column"] == name:
                return column.get("method") in ("ks", "chi_square")
    return False


def _performance(windows: Sequence[MonitorWindow]) -> str:
    series: dict[str, list[tuple[int, float]]] = {}
    reference: dict[str, float] = {}
    compared_with = "at registration"
    for window in windows:
        performance = window.performance or {}
        for metric, value in (performance.get("metrics") or {}).items():
            if isinstance(value, int | float) and math.isfinite(value):
                series.setdefault(metric, []).append((window.start_time, float(value)))
        reference.update(performance.get("reference") or {})
        for name, baseline in list((performance.get("baselines") or {}).items())[:1]:
            compared_with = "at registration" if name == "registration" else f"{name}: v{baseline.get('version')}"
    changes = version_changes(windows)
    if not series:
        return "<p>No realised performance yet: it is computed once labels arrive and the label delay has passed.</p>"
    cards = []
    for metric, points in sorted(series.items()):
        ref = reference.get(metric)
        note = f" ({compared_with} {_num(ref)})" if ref is not None else ""
        chart = _line_chart(points, ref, metric, dashed=True, marks=changes)
        cards.append(f"<div class='card'><h3>{_e(metric)}{_e(note)}</h3>{chart}</div>")
    return "<div class='grid'>" + "".join(cards) + "</div>"


def _line_chart(
    points: Sequence[tuple[int, float]],
    threshold: float | None,
    label: str,
    *,
    dashed: bool = False,
    column_is_test: bool = False,
    marks: dict[int, tuple[str, int]] | None = None,
) -> str:
    if not points:
        return "<p class='legend'>no values yet</p>"
    values = [v for _, v in points] + ([threshold] if threshold is not None else [])
    low, high = min([*values, 0.0]), max(values)
    high = high if high > low else low + 1
    times = [t for t, _ in points]
    first, last = min(times), max(times)
    span = last - first or 1

    def x(t: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * (t - first) / span

    def y(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v - low) / (high - low)

    shapes = [_axes()]
    if threshold is not None:
        dash = "6,4" if dashed else "3,3"
        colour = LINE if dashed else ALARM
        what = "reference" if dashed else ("p-value threshold" if column_is_test else "threshold")
        shapes.append(
            f"<line x1='{PAD}' x2='{WIDTH - PAD}' y1='{y(threshold):.1f}' y2='{y(threshold):.1f}' "
            f"stroke='{colour}' stroke-dasharray='{dash}'/><text x='{WIDTH - PAD - 80}' y='{y(threshold) - 4:.1f}'>"
            f"{what} {_num(threshold)}</text>"
        )
    for t, (model, version) in (marks or {}).items():
        if first <= t <= last:
            shapes.append(
                f"<line class='version-change' x1='{x(t):.1f}' x2='{x(t):.1f}' y1='{PAD}' y2='{HEIGHT - PAD}' "
                f"stroke='#777' stroke-dasharray='2,3'><title>{_e(_time(t))}: {_e(model)} v{version} takes over"
                f"</title></line><text x='{x(t) + 3:.1f}' y='{PAD + 10}'>v{version}</text>"
            )
    path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
    shapes.append(f"<polyline points='{path}' fill='none' stroke='{LINE}' stroke-width='2'/>")
    for t, v in points:
        above = threshold is not None and not dashed and v >= threshold and not column_is_test
        shapes.append(
            f"<circle cx='{x(t):.1f}' cy='{y(v):.1f}' r='3' fill='{ALARM if above else LINE}'>"
            f"<title>{_e(_time(t))}: {_e(label)} {v:.4g}</title></circle>"
        )
    shapes.append(f"<text x='{PAD}' y='{HEIGHT - 8}'>{_e(_time(first)[:10])}</text>")
    shapes.append(f"<text x='{WIDTH - PAD}' y='{HEIGHT - 8}' text-anchor='end'>{_e(_time(last)[:10])}</text>")
    shapes.append(f"<text x='4' y='{PAD - 8}'>{_e(label)} ({_num(low)} to {_num(high)})</text>")
    return _svg(shapes)


def _window_table(windows: Sequence[MonitorWindow]) -> str:
    if not windows:
        return "<p>No windows yet.</p>"
    kinds = sorted({k for w in windows for k in w.breaches})
    head = "".join(f"<th>{_e(k)}</th>" for k in kinds)
    changes = version_changes(windows)
    rows = []
    for window in reversed(windows):
        drift = window.drift or {}
        cells = "".join(f"<td>{_badge(window.breaches.get(k), 'breach', 'ok')}</td>" for k in kinds)
        serving = "" if window.model is None else f"{window.model} v{window.version}"
        changed = " <span class='badge none'>version changed</span>" if window.start_time in changes else ""
        rows.append(
            f"<tr class='{'drifted' if drift.get('drifted') else ''}'><td>{_e(_time(window.start_time))}</td>"
            f"<td>{_e(serving)}{changed}</td>"
            f"<td>{window.rows}</td><td>{window.labelled_rows}</td><td>{_num(drift.get('drifted_share'))}</td>"
            f"{cells}</tr>"
        )
    return (
        "<table><tr><th>window start (UTC)</th><th>version</th><th>requests</th><th>labelled rows</th>"
        f"<th>drifted share</th>{head}</tr>{''.join(rows)}</table>"
    )


def _svg(shapes: list[str]) -> str:
    return f"<svg viewBox='0 0 {WIDTH} {HEIGHT}' width='100%' role='img'>" + "".join(shapes) + "</svg>"


def _axes() -> str:
    return (
        f"<line x1='{PAD}' y1='{HEIGHT - PAD}' x2='{WIDTH - PAD}' y2='{HEIGHT - PAD}' stroke='#bbb'/>"
        f"<line x1='{PAD}' y1='{PAD}' x2='{PAD}' y2='{HEIGHT - PAD}' stroke='#bbb'/>"
    )


def _badge(value: object, yes: str = "drifted", no: str = "stable") -> str:
    if value is None:
        return "<span class='badge none'>n/a</span>"
    return f"<span class='badge {'bad' if value else 'good'}'>{_e(yes if value else no)}</span>"


def _window_spec(monitor: Monitor) -> str:
    if monitor.window_rows is not None:
        return f"{monitor.window_rows} requests"
    return f"{monitor.window_seconds}s"


def _time(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _num(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "&ndash;" if value is None else _e(value)
    return f"{value:.4g}"


def _short(value: float) -> str:
    return f"{value:.3g}"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
