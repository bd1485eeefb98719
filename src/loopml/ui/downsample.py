"""Metric histories cut down to what a chart can show: per pixel column, the lowest and highest point.

A chart `width` pixels wide shows at most two points per column, so 10,000 steps become at most 2 x width
points, and the line still passes through every extreme (min/max per bucket keeps spikes that averaging or
striding would hide). Non-finite values (NaN, inf) cannot be drawn and are counted instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Series", "downsample"]


@dataclass(frozen=True)
class Series:
    steps: np.ndarray
    values: np.ndarray
    total: int
    """Points of the history within the step range (before downsampling)."""
    skipped: int
    """Non-finite values left out."""


def downsample(
    steps: np.ndarray, values: np.ndarray, buckets: int, lo: int | None = None, hi: int | None = None
) -> Series:
    """The points with `lo <= step <= hi` of a history in step order, reduced to the min and max of each of
    `buckets` equal step ranges (all of them when they fit)."""
    inside = np.ones(len(steps), dtype=bool)
    if lo is not None:
        inside &= steps >= lo
    if hi is not None:
        inside &= steps <= hi
    steps, values = steps[inside], values[inside]
    finite = np.isfinite(values)
    total, skipped = len(steps), int(len(steps) - finite.sum())
    steps, values = steps[finite], values[finite]
    if len(steps) <= 2 * buckets:
        return Series(steps, values, total, skipped)
    first, span = int(steps[0]), max(1, int(steps[-1]) - int(steps[0]))
    bucket = np.minimum(buckets - 1, (steps - first) * buckets // span)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], len(steps)] - 1
    order = np.lexsort((values, bucket))  # by bucket (already in order), then by value within each bucket
    chosen = np.unique(np.concatenate([order[starts], order[ends]]))  # each bucket's min and max, in step order
    return Series(steps[chosen], values[chosen], total, skipped)
