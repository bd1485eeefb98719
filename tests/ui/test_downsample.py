"""Downsampling of metric histories for charts: what a chart draws keeps every extreme of every pixel column."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.ui.downsample import downsample

values = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10_000), values), max_size=400),
    st.integers(1, 50),
)
def test_min_and_max_of_every_bucket_survive(points: list[tuple[int, float]], buckets: int) -> None:
    points.sort(key=lambda p: p[0])
    steps = np.array([p[0] for p in points], dtype="<i8")
    vals = np.array([p[1] for p in points], dtype="<f8")
    series = downsample(steps, vals, buckets)
    finite = np.isfinite(vals)
    assert series.total == len(points)
    assert series.skipped == int((~finite).sum())
    assert len(series.steps) <= max(2 * buckets, int(finite.sum()))
    assert list(series.steps) == sorted(series.steps)
    kept = set(zip(series.steps.tolist(), series.values.tolist(), strict=True))
    assert kept <= set(zip(steps[finite].tolist(), vals[finite].tolist(), strict=True))
    if finite.any():
        assert float(vals[finite].max()) in series.values
        assert float(vals[finite].min()) in series.values


def test_a_step_range_is_sent_whole_when_it_fits() -> None:
    steps = np.arange(10_000, dtype="<i8")
    series = downsample(steps, np.sin(steps.astype("<f8")), 500, lo=2_000, hi=2_499)
    assert series.steps.tolist() == list(range(2_000, 2_500))
    assert series.total == 500
