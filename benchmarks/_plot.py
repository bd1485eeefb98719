"""Line plots as SVG with the standard library only, so a benchmark can draw its own curves.

    line_plot(Path("docs/benchmarks/search.svg"), "Search", "runs", "median ms",
              {"loopml": [(1e3, 5.1), (1e4, 9.8)], "MLflow": [(1e3, 90.0), (1e4, 800.0)]},
              log_x=True, log_y=True)

The picture is 480x300: axes with "nice" ticks (1-2-5 steps, or decades on a log axis), one polyline with
point markers per series, and a legend. Values that cannot be drawn (None, NaN, and <= 0 on a log axis) are
left out rather than guessed.
"""

from __future__ import annotations

import math
from pathlib import Path
from xml.sax.saxutils import escape

__all__ = ["line_plot"]

WIDTH, HEIGHT = 480, 300
LEFT, RIGHT, TOP, BOTTOM = 62, 16, 30, 44
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
DASHES = ("", "6 3", "2 3", "8 3 2 3")
"""A dash per series too, so the lines stay apart in grey print and for readers who do not see colour."""


def line_plot(
    path: Path,
    title: str,
    x_label: str,
    y_label: str,
    series: dict[str, list[tuple[float, float]]],
    *,
    log_x: bool = False,
    log_y: bool = False,
) -> None:
    """Write an SVG line plot of `series` (name -> [(x, y), ...]) to `path` (parent folders are created)."""
    clean = {name: _drawable(points, log_x, log_y) for name, points in series.items()}
    xs = [x for points in clean.values() for x, _ in points]
    ys = [y for points in clean.values() for _, y in points]
    x_axis = _Axis(xs, log_x, LEFT, WIDTH - RIGHT)
    y_axis = _Axis(ys, log_y, HEIGHT - BOTTOM, TOP, from_zero=not log_y)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2:.1f}" y="18" text-anchor="middle" font-size="13" font-weight="bold">'
        f"{escape(title)}</text>",
    ]
    plot_left, plot_right, plot_top, plot_bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    for value in y_axis.ticks():
        y = y_axis.place(value)
        parts.append(_line(plot_left, y, plot_right, y, "#e6e6e6"))
        parts.append(f'<text x="{plot_left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(_label(value))}</text>')
    for value in x_axis.ticks():
        x = x_axis.place(value)
        parts.append(_line(x, plot_top, x, plot_bottom, "#e6e6e6"))
        parts.append(f'<text x="{x:.1f}" y="{plot_bottom + 15}" text-anchor="middle">{escape(_label(value))}</text>')
    parts.append(
        f'<rect x="{plot_left}" y="{plot_top}" width="{plot_right - plot_left}" height="{plot_bottom - plot_top}" '
        'fill="none" stroke="#444"/>'
    )
    parts.append(
        f'<text x="{(plot_left + plot_right) / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(x_label)}</text>'
    )
    middle = (plot_top + plot_bottom) / 2
    parts.append(
        f'<text x="14" y="{middle:.1f}" text-anchor="middle" transform="rotate(-90 14 {middle:.1f})">'
        f"{escape(y_label)}</text>"
    )

    if clean:
        widest = max(len(name) for name in clean)
        parts.append(
            f'<rect x="{plot_left + 4}" y="{plot_top + 4}" width="{36 + 6.2 * widest:.0f}" '
            f'height="{15 * len(clean) + 4}" fill="white" fill-opacity="0.85" stroke="#ccc"/>'
        )
    for index, (name, points) in enumerate(clean.items()):
        color, dash = COLORS[index % len(COLORS)], DASHES[index % len(DASHES)]
        placed = [(x_axis.place(x), y_axis.place(y)) for x, y in sorted(points)]
        if len(placed) > 1:
            coordinates = " ".join(f"{x:.1f},{y:.1f}" for x, y in placed)
            dashing = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<polyline points="{coordinates}" fill="none" stroke="{color}" stroke-width="2"{dashing}>'
                f"<title>{escape(name)}</title></polyline>"
            )
        parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in placed)
        # the legend: top left inside the plot, one line per series
        legend_y = plot_top + 14 + 15 * index
        dashing = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<line x1="{plot_left + 8}" y1="{legend_y - 4}" x2="{plot_left + 30}" y2="{legend_y - 4}" '
            f'stroke="{color}" stroke-width="2"{dashing}/>'
        )
        parts.append(f'<text x="{plot_left + 35}" y="{legend_y}">{escape(name)}</text>')
    parts.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def _drawable(points: list[tuple[float, float]], log_x: bool, log_y: bool) -> list[tuple[float, float]]:
    kept = []
    for x, y in points:
        if x is None or y is None or not (math.isfinite(x) and math.isfinite(y)):
            continue
        if (log_x and x <= 0) or (log_y and y <= 0):
            continue
        kept.append((float(x), float(y)))
    return kept


def _line(x1: float, y1: float, x2: float, y2: float, color: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}"/>'


class _Axis:
    """Maps data values to pixels; the range is widened to whole ticks (decades on a log axis)."""

    def __init__(self, values: list[float], log: bool, start: float, end: float, *, from_zero: bool = False) -> None:
        self.log, self.start, self.end = log, start, end
        if not values:
            values = [1.0, 10.0] if log else [0.0, 1.0]
        low, high = min(values), max(values)
        if log:
            self.low, self.high = 10 ** math.floor(math.log10(low)), 10 ** math.ceil(math.log10(high))
            if self.low == self.high:
                self.high = self.low * 10
            return
        if from_zero and low > 0:
            low = 0.0
        if low == high:
            low, high = (low - 1, high + 1) if low else (0.0, 1.0)
        self.step = _nice_step((high - low) / 5)
        self.low, self.high = math.floor(low / self.step) * self.step, math.ceil(high / self.step) * self.step

    def ticks(self) -> list[float]:
        if self.log:
            found, value = [], self.low
            while value <= self.high * 1.0001:
                found.append(value)
                value *= 10
            return found
        count = round((self.high - self.low) / self.step)
        return [self.low + i * self.step for i in range(count + 1)]

    def place(self, value: float) -> float:
        if self.log:
            share = (math.log10(value) - math.log10(self.low)) / (math.log10(self.high) - math.log10(self.low))
        else:
            share = (value - self.low) / (self.high - self.low)
        return self.start + share * (self.end - self.start)


def _nice_step(raw: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten that is at least `raw`."""
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * power >= raw * 0.999:
            return factor * power
    return 10 * power


def _label(value: float) -> str:
    """Short tick labels: 1k, 10M, 0.5, 2.5, 100."""
    magnitude = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:g}{suffix}"
    if magnitude and magnitude < 0.01:
        return f"{value:.0e}"
    return f"{round(value, 6):g}"
