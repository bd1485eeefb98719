"""Metric histories cut down to what a chart can show: per pixel column, the lowest and highest point.

A chart `width` pixels wide shows at most two points per column, so 10,000 steps become at most 2 x width
points, and the line still passes through every extreme (min/max per bucket keeps spikes that averaging or
striding would hide). Non-finite values (NaN, inf) cannot be drawn and are counted instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from loopml.domain import Metric

__all__ = ["Series", "downsample"]


@dataclass(frozen=True)
class Series:
    steps: list[int]
    values: list[float]
    total: int
    """Points of the history within the step range (before downsampling)."""
    skipped: int
    """Non-finite values left out."""


def downsample(points: Sequence[Metric], buckets: int, lo: int | None = None, hi: int | None = None) -> Series:
    """The points with `lo <= step <= hi`, in step order, reduced to the min and max of each of `buckets`
    equal step ranges (all of them when they fit)."""
    ordered = sorted(
        (p for p in points if (lo is None or p.step >= lo) and (hi is None or p.step <= hi)),
        key=lambda p: (p.step, p.timestamp),
    )
    finite = [p for p in ordered if math.isfinite(p.value)]
    skipped = len(ordered) - len(finite)
    if len(finite) <= 2 * buckets:
        return Series([p.step for p in finite], [p.value for p in finite], len(ordered), skipped)
    first, last = finite[0].step, finite[-1].step
    span = max(1, last - first)
    chosen: list[int] = []
    bucket, low, high = -1, 0, 0
    for index, point in enumerate(finite):
        b = min(buckets - 1, (point.step - first) * buckets // span)
        if b != bucket:
            if bucket >= 0:
                chosen.extend(sorted({low, high}))
            bucket, low, high = b, index, index
        elif point.value < finite[low].value:
            low = index
        elif point.value > finite[high].value:
            high = index
    chosen.extend(sorted({low, high}))
    return Series([finite[i].step for i in chosen], [finite[i].value for i in chosen], len(ordered), skipped)
