"""Drift statistics against independent computations, false alarms, known shifts and real seasonal drift."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import spatial, stats

from loopml.data import build_profile
from loopml.errors import InvalidInput
from loopml.monitoring import (
    chi_square,
    column_drift,
    dataset_drift,
    jensen_shannon,
    ks,
    psi,
    wasserstein_normalised,
)
from loopml.monitoring.drift import bin_counts

HOUR_CSV = Path(__file__).resolve().parents[2] / "examples" / "data" / "bike_sharing" / "hour.csv"
SHIFTED = ("x0", "x5", "x10")


def synthetic(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """20 numeric columns (normal, log-normal, Poisson counts, uniform) and 5 categorical ones."""
    columns: dict[str, object] = {}
    for i in range(20):
        kind = i % 4
        if kind == 0:
            columns[f"x{i}"] = rng.normal(10 * i, 1 + i, n)
        elif kind == 1:
            columns[f"x{i}"] = rng.lognormal(0, 0.75, n)
        elif kind == 2:
            columns[f"x{i}"] = rng.poisson(3 + i, n)
        else:
            columns[f"x{i}"] = rng.uniform(-1, 1, n)
    for j in range(5):
        k = 3 + 4 * j
        columns[f"c{j}"] = rng.choice([f"v{m}" for m in range(k)], size=n, p=rng.dirichlet(np.ones(k)))
    return pd.DataFrame(columns)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return synthetic(50_000, np.random.default_rng(0))


# --- each statistic against an independent computation ---------------------------------------------


def test_psi_is_the_textbook_formula() -> None:
    rng = np.random.default_rng(1)
    r = rng.dirichlet(np.ones(10))
    c = rng.dirichlet(np.ones(10))
    expected = sum((ci - ri) * np.log(ci / ri) for ri, ci in zip(r, c, strict=True))
    assert psi(r, c) == pytest.approx(expected, abs=1e-9)
    assert psi(r * 1000, c * 37) == pytest.approx(expected, abs=1e-9)  # counts are normalised
    assert psi(r, r) == 0.0
    assert np.isfinite(psi([0.5, 0.5, 0.0], [0.4, 0.3, 0.3]))  # empty bin floored at 1e-4
    assert psi([0.5, 0.5, 0.0], [0.4, 0.3, 0.3]) == pytest.approx(
        (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.3 - 0.5) * np.log(0.3 / 0.5) + (0.3 - 1e-4) * np.log(0.3 / 1e-4)
    )


def test_ks_matches_scipy() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=700), rng.normal(0.1, size=300)
    expected = stats.ks_2samp(a, b)
    statistic, p_value = ks(a, b)
    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert p_value == pytest.approx(expected.pvalue, abs=1e-9)
    # the statistic is the largest gap between the two empirical CDFs
    grid = np.sort(np.concatenate([a, b]))
    gap = np.abs(
        np.searchsorted(np.sort(a), grid, "right") / len(a) - np.searchsorted(np.sort(b), grid, "right") / len(b)
    )
    assert statistic == pytest.approx(gap.max(), abs=1e-12)


def test_wasserstein_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.lognormal(size=2000), rng.lognormal(0.2, size=1500)
    expected = stats.wasserstein_distance(a, b) / np.std(a)
    assert wasserstein_normalised(a, b) == pytest.approx(expected, abs=1e-9)
    # a pure location shift of d standard deviations scores d
    assert wasserstein_normalised(a, a + 0.5 * np.std(a)) == pytest.approx(0.5, abs=1e-9)


def test_chi_square_matches_scipy() -> None:
    ref, cur = np.array([500, 300, 150, 50]), np.array([40, 35, 20, 5])
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    statistic, p_value = chi_square(ref, cur)
    assert statistic == pytest.approx(expected.statistic, abs=1e-9)
    assert p_value == pytest.approx(expected.pvalue, abs=1e-9)
    # a category empty on both sides does not change the test
    assert chi_square([*ref, 0], [*cur, 0]) == pytest.approx((statistic, p_value), abs=1e-12)


def test_jensen_shannon_matches_scipy() -> None:
    p, q = np.array([0.5, 0.3, 0.2, 0.0]), np.array([0.1, 0.3, 0.4, 0.2])
    assert jensen_shannon(p, q) == pytest.approx(spatial.distance.jensenshannon(p, q), abs=1e-9)
    assert jensen_shannon([10, 20], [10, 20]) == 0.0


def test_profile_based_wasserstein_is_close_to_exact() -> None:
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=20_000), rng.normal(0.3, 1.2, size=5000)
    result = column_drift(build_profile(pd.DataFrame({"x": ref}))["x"], cur, method="wasserstein")
    assert result.score == pytest.approx(wasserstein_normalised(ref, cur), abs=0.01)


def test_profile_based_psi_equals_psi_of_the_bins() -> None:
    rng = np.random.default_rng(5)
    ref, cur = rng.gamma(2.0, size=10_000), rng.gamma(2.2, size=3000)
    column = build_profile(pd.DataFrame({"x": ref}))["x"]
    assert column.edges is not None
    counts = np.bincount(np.searchsorted(column.edges, cur, side="right"), minlength=len(column.edges) + 1)
    result = column_drift(column, cur, method="psi")
    assert result.score == pytest.approx(psi(column.shares or [], counts), abs=1e-12)
    assert result.band in {"none", "moderate", "significant"}


BIKE_NUMERIC = ("temp", "atemp", "hum", "windspeed", "casual", "registered", "cnt")


def test_profile_wasserstein_equals_scipy_on_every_bike_sharing_column() -> None:
    hours = pd.read_csv(HOUR_CSV)
    first, second = hours[hours["yr"] == 0], hours[hours["yr"] == 1]
    profile = build_profile(first, columns=list(BIKE_NUMERIC))
    for name in BIKE_NUMERIC:
        exact = stats.wasserstein_distance(first[name], second[name]) / np.std(first[name])
        result = column_drift(profile[name], second[name].to_numpy(), method="wasserstein")
        assert result.score == pytest.approx(exact, rel=1e-9), name


def test_profile_wasserstein_of_a_continuous_column_stays_within_the_stored_bound() -> None:
    hours = pd.read_csv(HOUR_CSV)
    hours["registered_share"] = hours["registered"] / hours["cnt"]  # thousands of distinct values
    first, second = hours[hours["mnth"] <= 6], hours[hours["mnth"] > 6]
    column = build_profile(first, columns=["registered_share"])["registered_share"]
    assert column.atoms is not None and len(column.atoms) == 1000 < column.distinct
    assert column.atom_error is not None and column.std is not None
    bound = column.atom_error / column.std
    assert 0 < bound < 0.005
    exact = stats.wasserstein_distance(first["registered_share"], second["registered_share"]) / column.std
    result = column_drift(column, second["registered_share"].to_numpy(), method="wasserstein")
    assert abs(result.score - exact) <= bound + 1e-12


@pytest.mark.parametrize("noise", [0.0, 1e-17])
def test_a_constant_reference_column_gives_finite_scores_and_sees_a_shift(noise: float) -> None:
    rng = np.random.default_rng(8)
    reference = 0.3 + noise * rng.choice([-1.0, 0.0, 1.0], 3000)  # 0.3 as float arithmetic leaves it
    column = build_profile(pd.DataFrame({"x": reference}))["x"]
    same, shifted = np.full(2000, 0.3), np.where(np.arange(2000) < 400, 1.3, 0.3)
    for method in ("wasserstein", "psi", "jensen_shannon", "ks"):
        unchanged = column_drift(column, same, method=method)
        moved = column_drift(column, shifted, method=method)
        assert np.isfinite(unchanged.score) and np.isfinite(moved.score), method
        assert moved.drifted, method
        assert (unchanged.score, unchanged.drifted) == (0.0, False), method
    assert np.isfinite(wasserstein_normalised(reference, shifted))
    assert wasserstein_normalised(reference, same) == 0.0


def test_a_small_real_spread_is_not_mistaken_for_a_constant() -> None:
    reference = 0.5 + np.random.default_rng(10).normal(0, 1e-7, 1000)  # tiny, but far above float noise
    current = np.full(10, 1e3)
    expected = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert wasserstein_normalised(reference, current) == pytest.approx(expected, rel=1e-9)
    column = build_profile(pd.DataFrame({"x": reference}))["x"]
    assert column.edges is not None and len(column.edges) == 13
    assert column_drift(column, current, method="wasserstein").score == pytest.approx(expected, rel=1e-9)


def test_values_above_the_reference_range_get_a_bin_of_their_own() -> None:
    # a value equal to an edge falls in the bin above it, so the top bin of a 0/1 column held 1 and 2 alike
    rng = np.random.default_rng(9)
    column = build_profile(pd.DataFrame({"flag": rng.integers(0, 2, 5000)}))["flag"]
    window = np.repeat([0, 1, 2], [800, 800, 400])
    assert column_drift(column, window, method="psi").drifted
    assert not column_drift(column, window[:1600], method="psi").drifted


# --- defaults: false alarms and a known shift ---------------------------------------------------------


@pytest.mark.parametrize("size", [500, 1000, 5000])
def test_windows_from_the_reference_itself_rarely_drift(reference: pd.DataFrame, size: int) -> None:
    profile = build_profile(reference)
    rng = np.random.default_rng(size)
    dataset_alarms = 0
    column_alarms = 0
    checks = 0
    for _ in range(100):
        window = reference.iloc[rng.choice(len(reference), size, replace=False)]
        report = dataset_drift(profile, window)
        dataset_alarms += report.drifted
        column_alarms += len(report.drifted_columns)
        checks += len(report.columns)
    assert dataset_alarms <= 5  # at most 5% of windows get a drifted verdict
    assert column_alarms / checks <= 0.05  # and at most 5% of column checks raise a false alarm


@pytest.mark.parametrize("size", [2000, 5000])
def test_a_half_std_mean_shift_is_flagged_on_exactly_those_columns(reference: pd.DataFrame, size: int) -> None:
    profile = build_profile(reference)
    rng = np.random.default_rng(size + 1)
    window = reference.iloc[rng.choice(len(reference), size, replace=False)].copy()
    for name in SHIFTED:
        shift = 0.5 * reference[name].std()
        window[name] = window[name] + (round(shift) if name == "x10" else shift)  # x10 holds whole counts
    report = dataset_drift(profile, window)
    assert sorted(report.drifted_columns) == sorted(SHIFTED)
    assert report.drifted_share == pytest.approx(3 / 25)
    assert not report.drifted
    for name in SHIFTED:
        assert report[name].method == "psi"
        assert report[name].threshold == 0.1


def test_small_windows_use_ks_and_still_see_the_shift(reference: pd.DataFrame) -> None:
    profile = build_profile(reference)
    window = reference.sample(400, random_state=9).copy()
    window["x0"] = window["x0"] + 0.5 * reference["x0"].std()
    report = dataset_drift(profile, window)
    assert report["x0"].method == "ks"
    assert report["x0"].drifted
    assert report["x0"].p_value is not None
    assert report["x0"].p_value < 0.01
    assert report["c0"].method == "chi_square"


# --- configuration and reporting --------------------------------------------------------------------


def test_methods_and_thresholds_can_be_chosen_per_column(reference: pd.DataFrame) -> None:
    profile = build_profile(reference)
    window = reference.sample(3000, random_state=1)
    report = dataset_drift(
        profile, window, methods={"x0": "wasserstein", "c0": "psi"}, thresholds={"x1": 0.0001, "c0": 0.2}
    )
    assert report["x0"].method == "wasserstein"
    assert (report["c0"].method, report["c0"].threshold) == ("psi", 0.2)
    assert report["x1"].threshold == 0.0001
    assert report["x1"].drifted  # any sampling noise passes a threshold this low
    with pytest.raises(InvalidInput, match="does not apply"):
        dataset_drift(profile, window, methods={"c0": "ks"})
    with pytest.raises(InvalidInput, match="unknown drift method"):
        dataset_drift(profile, window, methods={"x0": "magic"})


def test_weights_make_the_share_follow_feature_importance(reference: pd.DataFrame) -> None:
    profile = build_profile(reference, columns=["x0", "x3", "x7"])
    window = reference.sample(3000, random_state=2).copy()
    window["x0"] = window["x0"] + reference["x0"].std()
    plain = dataset_drift(profile, window)
    weighted = dataset_drift(profile, window, weights={"x0": 8.0, "x3": 1.0, "x7": 1.0})
    assert plain.drifted_share == pytest.approx(1 / 3)
    assert not plain.drifted
    assert weighted.drifted_share == pytest.approx(0.8)
    assert weighted.drifted
    assert weighted.weighted


def test_prediction_label_and_segments(reference: pd.DataFrame) -> None:
    frame = reference[["x0", "x3", "c0"]].assign(prediction=reference["x4"], label=reference["c1"])
    profile = build_profile(frame, prediction_column="prediction", label_column="label", segments=["c0"])
    window = frame.sample(8000, random_state=3).copy()
    window["prediction"] = window["prediction"] + 2 * frame["prediction"].std()
    top = frame["c0"].value_counts().index[0]
    window.loc[window["c0"] == top, "x3"] += 0.5  # only one segment moves
    report = dataset_drift(profile, window, segments=["c0"])
    assert report.prediction is not None
    assert report.prediction.drifted
    assert report.label is not None
    assert not report.label.drifted
    assert {c.column for c in report.columns} == {"x0", "x3", "c0"}
    by_value = {s.value: s for s in report.segments}
    moved = {c.column for c in by_value[top].columns if c.drifted}
    assert moved == {"x3"}
    assert not any(c.drifted for s in report.segments if s.value != top for c in s.columns)
    document = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert document["prediction"]["drifted"] is True
    with pytest.raises(InvalidInput, match="segments="):
        dataset_drift(profile, window, segments=["x0"])


def test_empty_and_all_null_windows_give_a_clear_result(reference: pd.DataFrame) -> None:
    profile = build_profile(reference, columns=["x0", "c0"])
    empty = dataset_drift(profile, reference.iloc[:0])
    assert not empty.drifted
    assert all(c.note and "no non-null values" in c.note for c in empty.columns)
    nulls = dataset_drift(profile, pd.DataFrame({"x0": [np.nan] * 10, "c0": [None] * 10}))
    assert not nulls.drifted
    missing = dataset_drift(profile, reference[["x0"]].iloc[:2000])
    assert missing.missing_columns == ["c0"]
    json.dumps(empty.to_dict(), allow_nan=False)


def test_unseen_categories_count_as_drift() -> None:
    profile = build_profile(pd.DataFrame({"c": ["a", "b"] * 2000}))
    result = column_drift(profile["c"], ["a", "z"] * 1000)
    assert result.method == "jensen_shannon"
    assert result.drifted


# --- real seasonal drift ----------------------------------------------------------------------------


def test_bike_sharing_summer_drifts_from_the_first_half_of_2011_in_temperature() -> None:
    hours = pd.read_csv(HOUR_CSV)
    first_half = hours[(hours["yr"] == 0) & (hours["mnth"] <= 6)]
    summer = hours[(hours["yr"] == 0) & hours["mnth"].isin([7, 8, 9])]
    features = ["temp", "atemp", "hum", "windspeed", "hr", "weekday", "workingday", "weathersit"]
    profile = build_profile(first_half, columns=[*features, "cnt"], label_column="cnt")
    report = dataset_drift(profile, summer)
    assert report["temp"].drifted
    assert report["atemp"].drifted
    assert report["temp"].band == "significant"
    for calendar in ("hr", "weekday", "workingday"):
        assert not report[calendar].drifted
    assert report.label is not None
    assert report.label.drifted  # more rentals in summer


# --- binning a window on the profile's edges -----------------------------------------------------------------

_edge_values = st.one_of(
    st.floats(allow_nan=False, width=64),
    st.sampled_from([0.0, -0.0, 1.0, float("inf"), float("-inf")]),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_edge_values, min_size=1, max_size=80),
    st.lists(_edge_values, min_size=0, max_size=200),
)
def test_bin_counts_equal_a_binary_search_per_value(edges: list[float], values: list[float]) -> None:
    """Repeated edges, values on an edge, infinities and both signed zeros land where searchsorted puts them,
    with few edges (one comparison per edge) and with many (the binary search itself)."""
    sorted_edges = np.sort(np.asarray(edges, dtype=np.float64))
    array = np.asarray(values + edges[:3], dtype=np.float64)  # some values sit exactly on an edge
    expected = np.bincount(np.searchsorted(sorted_edges, array, side="right"), minlength=len(sorted_edges) + 1)
    np.testing.assert_array_equal(bin_counts(sorted_edges, array), expected)
