"""Reference profiles: every statistic against numpy/pandas on the same data, and a lossless JSON round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.data import Profile, build_profile
from loopml.errors import InvalidInput


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 3000
    x = rng.normal(5.0, 2.0, n)
    x[::100] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(0, 10, n),
            "city": rng.choice(["paris", "lyon", "nice", "brest"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "flag": rng.random(n) < 0.3,
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
        }
    )


def test_numeric_statistics_match_numpy(frame: pd.DataFrame) -> None:
    column = build_profile(frame)["x"]
    values = frame["x"].dropna().to_numpy()
    assert (column.count, column.null_count, column.dtype, column.kind) == (3000, 30, "float", "numeric")
    assert column.min == values.min()
    assert column.max == values.max()
    assert column.mean == pytest.approx(values.mean(), rel=1e-12)
    assert column.std == pytest.approx(values.std(), rel=1e-12)
    assert column.quantiles == pytest.approx(np.quantile(values, np.linspace(0, 1, 101)).tolist(), rel=1e-12)
    assert column.edges is not None
    assert column.shares is not None
    expected_edges = np.quantile(values, [0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99])
    assert column.edges == pytest.approx(expected_edges.tolist(), rel=1e-12)
    counts = np.bincount(np.searchsorted(column.edges, values, side="right"), minlength=len(column.edges) + 1)
    assert column.shares == pytest.approx((counts / len(values)).tolist(), abs=1e-15)
    assert sum(column.shares) == pytest.approx(1.0)
    assert column.distinct == len(np.unique(values))


def test_atoms_are_the_distinct_values_with_their_counts_up_to_a_thousand() -> None:
    few = build_profile(pd.DataFrame({"x": [3.0, 1.0, 3.0, 2.0, 3.0, np.nan]}))["x"]
    assert (few.atoms, few.atom_counts, few.atom_error) == ([1.0, 2.0, 3.0], [1, 1, 3], 0.0)
    many = build_profile(pd.DataFrame({"x": np.arange(5000.0)}))["x"]
    assert many.atoms is not None and many.atom_counts is not None and many.atom_error is not None
    assert len(many.atoms) == 1000 and many.atom_counts == [5] * 1000
    assert many.atoms[:2] == [2.0, 7.0]  # the median of each group of 5 sorted values
    assert many.atom_error == pytest.approx(1.2)  # each group of 5 moves 2 + 1 + 0 + 1 + 2 to its median


def test_sample_is_seeded_bounded_and_drawn_from_the_column(frame: pd.DataFrame) -> None:
    first = build_profile(frame, sample_size=500, seed=3)["x"].sample
    again = build_profile(frame, sample_size=500, seed=3)["x"].sample
    other = build_profile(frame, sample_size=500, seed=4)["x"].sample
    assert first == again
    assert first != other
    assert first is not None
    assert 450 <= len(first) <= 500  # rows whose value is null are left out
    assert set(first) <= set(frame["x"].dropna())


def test_categorical_top_k_other_and_cardinality(frame: pd.DataFrame) -> None:
    column = build_profile(frame, top_k=2)["city"]
    counts = frame["city"].value_counts()
    assert column.categories == {"paris": counts["paris"], "lyon": counts["lyon"]}
    assert column.other_count == counts["nice"] + counts["brest"]
    assert column.distinct == 4
    assert column.dtype == "string"
    flag = build_profile(frame)["flag"]
    assert flag.dtype == "boolean"
    assert flag.categories == {str(k): v for k, v in frame["flag"].value_counts().items()}


def test_integer_and_datetime_columns(frame: pd.DataFrame) -> None:
    profile = build_profile(frame)
    assert profile["k"].dtype == "integer"
    assert profile["k"].distinct == 10
    assert profile["k"].edges is not None
    assert len(set(profile["k"].edges)) == len(profile["k"].edges)  # duplicate quantiles dropped
    when = profile["when"]
    assert when.kind == "datetime"
    assert when.min == pd.Timestamp("2024-01-01", tz="UTC").timestamp()
    assert when.unique


def test_json_round_trip_is_lossless(frame: pd.DataFrame) -> None:
    frame = frame.assign(extreme=np.r_[np.inf, -np.inf, np.arange(len(frame) - 2.0)])
    profile = build_profile(frame, segments=["city"], max_segments=2)
    text = profile.to_json()
    json.loads(text)  # strict JSON: no NaN or Infinity literals
    assert Profile.from_json(text) == profile
    assert profile["extreme"].infinite_count == 2
    assert set(profile.segments["city"]) == {"paris", "lyon"}
    assert profile.segments["city"]["paris"].row_count == (frame["city"] == "paris").sum()


def test_arrow_table_and_files_give_the_same_profile(frame: pd.DataFrame, tmp_path: Path) -> None:
    frame = frame.drop(columns=["when"])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp_path / "data.parquet")
    frame.to_csv(tmp_path / "data.csv", index=False)
    from_frame = build_profile(frame, columns=["x", "city"])
    for source in (table, tmp_path / "data.parquet", str(tmp_path / "data.csv")):
        other = build_profile(source, columns=["x", "city"])
        assert other["x"].quantiles == pytest.approx(from_frame["x"].quantiles)
        assert other["x"].null_count == from_frame["x"].null_count
        assert other["city"].categories == from_frame["city"].categories


def test_hostile_frames_profile_without_crashing() -> None:
    frame = pd.DataFrame(
        {
            "empty": pd.Series([None, None, None], dtype=object),
            "mixed": [1, "two", 3.0],
            "huge": ["x" * 100_000, "y", None],
            "nan": [np.nan, np.nan, np.nan],
        }
    )
    profile = build_profile(frame)
    assert profile["empty"].null_count == 3
    assert profile["mixed"].dtype == "string"
    assert profile["nan"].null_count == 3
    assert profile["nan"].mean is None
    assert build_profile(pd.DataFrame({"x": pd.Series([], dtype=float)}))["x"].count == 0


def test_bad_arguments_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such columns"):
        build_profile(pd.DataFrame({"x": [1]}), columns=["y"])
    with pytest.raises(InvalidInput, match="no such file"):
        build_profile(tmp_path / "missing.csv")
    with pytest.raises(InvalidInput, match="not a loopml profile"):
        Profile.from_json("[1, 2]")
    with pytest.raises(InvalidInput, match="invalid JSON"):
        Profile.from_json("{")
