"""Reference profiles: a small, JSON-serialisable summary of a dataset that monitoring bins new data against.

A profile is built once from the training (reference) data and stored; drift checks and contracts read
only the profile, never the training data again. Per column it keeps counts and null rate, and

- numeric: min/max, mean/std (population, ddof=0), 101 percentiles, bin edges at the quantiles
  1, 5, 10, 20, ..., 90, 95, 99 % (deciles plus tails, duplicates dropped) with the reference share of
  each bin, a seeded random sample of up to `sample_size` values (for KS on small windows), and the
  distribution in at most `ATOMS` weighted points (for the Wasserstein distance, see `ColumnProfile.atoms`);
- categorical (strings, booleans): the `top_k` most frequent values with counts, the count of all
  others, and the cardinality;
- datetime: min/max as seconds since the epoch (UTC).
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from loopml.data._columns import Column, Kind, LogicalType, Source, Table
from loopml.errors import InvalidInput

FORMAT_VERSION = 1
EDGE_PROBABILITIES = (0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
PERCENTILES = tuple(i / 100 for i in range(101))
SPREAD_TOLERANCE = 1e-12
"""A standard deviation at most this times max(1, largest |value|) is float noise: the column is constant."""
ATOMS = 1000
"""Most weighted points kept per numeric column for the Wasserstein distance (exact up to this many distinct values)."""


@dataclass(frozen=True)
class ColumnProfile:
    """Summary of one column. Fields that do not apply to the column's kind are None."""

    name: str
    dtype: LogicalType
    kind: Kind
    physical_type: str
    count: int
    null_count: int
    distinct: int
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    infinite_count: int = 0
    edges: list[float] | None = None
    """Interior bin edges; bin i holds edges[i-1] <= x < edges[i] (first and last bins are open)."""
    shares: list[float] | None = None
    """Reference share of each of the len(edges) + 1 bins (infinite values fall in the outer bins)."""
    quantiles: list[float] | None = None
    """Values at 0, 1, ..., 100 percent of the finite values (linear interpolation)."""
    sample: list[float] | None = None
    """Seeded random sample of finite values, for tests that need raw values (KS)."""
    categories: dict[str, int] | None = None
    """The top_k most frequent values (as text) and their counts, most frequent first."""
    other_count: int | None = None
    atoms: list[float] | None = None
    """The finite values as at most `ATOMS` increasing points weighted by `atom_counts`: every distinct value
    with its count when there are at most `ATOMS` of them, else the median of each of `ATOMS` equal-count
    groups of the sorted values."""
    atom_counts: list[int] | None = None
    atom_error: float | None = None
    """1-Wasserstein distance between the finite values and the atoms (0 when they are the distinct values):
    a Wasserstein distance computed from the atoms is within this of the one computed from all values."""

    @property
    def null_rate(self) -> float:
        return self.null_count / self.count if self.count else 0.0

    @property
    def value_count(self) -> int:
        """Non-null values."""
        return self.count - self.null_count

    @property
    def unique(self) -> bool:
        """Every non-null value is distinct (and there is at least one)."""
        return self.value_count > 0 and self.distinct == self.value_count

    def to_dict(self) -> dict[str, Any]:
        return {key: _encode(value) for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        known = {f.name for f in fields(cls)}
        return cls(**{key: _decode(value) for key, value in data.items() if key in known})


@dataclass(frozen=True)
class Profile:
    """A dataset summary: one `ColumnProfile` per column, plus optional per-segment profiles."""

    columns: dict[str, ColumnProfile]
    row_count: int
    created_at: str
    top_k: int = 20
    sample_size: int = 5000
    seed: int = 0
    prediction_column: str | None = None
    label_column: str | None = None
    segments: dict[str, dict[str, Profile]] = field(default_factory=dict)
    """segment column -> segment value (as text) -> profile of the rows with that value."""
    version: int = FORMAT_VERSION

    def __getitem__(self, name: str) -> ColumnProfile:
        try:
            return self.columns[name]
        except KeyError:
            raise InvalidInput(f"the profile has no column {name!r}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "row_count": self.row_count,
            "created_at": self.created_at,
            "top_k": self.top_k,
            "sample_size": self.sample_size,
            "seed": self.seed,
            "prediction_column": self.prediction_column,
            "label_column": self.label_column,
            "columns": [column.to_dict() for column in self.columns.values()],
            "segments": {
                key: {value: profile.to_dict() for value, profile in by_value.items()}
                for key, by_value in self.segments.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        try:
            if data.get("version") != FORMAT_VERSION:
                raise InvalidInput(f"unsupported profile version {data.get('version')!r} (expected {FORMAT_VERSION})")
            columns = [ColumnProfile.from_dict(c) for c in data["columns"]]
            return cls(
                columns={c.name: c for c in columns},
                row_count=int(data["row_count"]),
                created_at=str(data["created_at"]),
                top_k=int(data.get("top_k", 20)),
                sample_size=int(data.get("sample_size", 5000)),
                seed=int(data.get("seed", 0)),
                prediction_column=data.get("prediction_column"),
                label_column=data.get("label_column"),
                segments={
                    key: {value: cls.from_dict(p) for value, p in by_value.items()}
                    for key, by_value in (data.get("segments") or {}).items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            if isinstance(error, InvalidInput):
                raise
            raise InvalidInput(f"not a loopml profile: {type(error).__name__}: {error}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Profile:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise InvalidInput(f"not a loopml profile: invalid JSON at line {error.lineno}: {error.msg}") from None
        if not isinstance(data, dict):
            raise InvalidInput("not a loopml profile: expected a JSON object")
        return cls.from_dict(data)


def build_profile(
    source: Source,
    *,
    columns: Sequence[str] | None = None,
    top_k: int = 20,
    sample_size: int = 5000,
    seed: int = 0,
    prediction_column: str | None = None,
    label_column: str | None = None,
    segments: Sequence[str] | None = None,
    max_segments: int = 20,
) -> Profile:
    """Summarise `source` (a DataFrame, a pyarrow Table, or a .csv/.parquet path) column by column.

    `segments` names columns whose `max_segments` most frequent values each get a profile of their own
    (for segment-level drift). `prediction_column` and `label_column` are profiled like any column and
    remembered, so drift reports them apart from the features.

    >>>     >>> profile = build_profile(pd.DataFrame({"x": [1.0, 2.0, None], "city": ["a", "b", "a"]}))
    >>> profile["x"].null_count, profile["city"].categories
    (1, {'a': 2, 'b': 1})
    """
    if top_k < 1 or sample_size < 0 or max_segments < 1:
        raise InvalidInput("top_k and max_segments must be at least 1, sample_size at least 0")
    table = Table(source)
    names = list(table.names if columns is None else columns)
    for role in (prediction_column, label_column):
        if role is not None and role not in names:
            names.append(role)
    missing = [n for n in names if n not in table.names]
    if missing:
        raise InvalidInput(f"no such columns: {', '.join(map(repr, missing))}")
    rng = np.random.default_rng(seed)
    settings: dict[str, Any] = {
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "top_k": top_k,
        "sample_size": sample_size,
        "seed": seed,
        "prediction_column": prediction_column,
        "label_column": label_column,
    }
    by_segment: dict[str, dict[str, Profile]] = {}
    for key in segments or ():
        if key not in table.names:
            raise InvalidInput(f"no segment column {key!r}")
        by_segment[key] = {}
        for value, indices in segment_rows(table.column(key), max_segments).items():
            rows = _sample_rows(len(indices), sample_size, rng)
            by_segment[key][value] = Profile(
                columns={
                    c.name: profile_column(c.take(indices), top_k=top_k, sample_rows=rows) for c in table.columns(names)
                },
                row_count=len(indices),
                **settings,
            )
    rows = _sample_rows(table.num_rows, sample_size, rng)
    return Profile(
        columns={c.name: profile_column(c, top_k=top_k, sample_rows=rows) for c in table.columns(names)},
        row_count=table.num_rows,
        segments=by_segment,
        **settings,
    )


def segment_rows(column: Column, max_segments: int) -> dict[str, NDArray[np.intp]]:
    """Row indices of each of the `max_segments` most frequent values of `column` (nulls excluded)."""
    codes, texts = column.codes()
    counts = np.bincount(codes[codes >= 0], minlength=len(texts))
    order = sorted(range(len(texts)), key=lambda i: (-counts[i], texts[i]))[:max_segments]
    return {texts[i]: np.flatnonzero(codes == i) for i in order}


def profile_column(column: Column, *, top_k: int = 20, sample_rows: NDArray[np.intp] | None = None) -> ColumnProfile:
    """Summary of one column; `sample_rows` picks the rows of the numeric sample (same rows for all columns)."""
    base: dict[str, Any] = {
        "name": column.name,
        "dtype": column.logical,
        "kind": column.kind,
        "physical_type": column.physical,
        "count": len(column),
    }
    if column.kind == "categorical":
        counts = column.counts()
        top = dict(list(counts.items())[:top_k])
        values = sum(counts.values())
        return ColumnProfile(
            **base,
            null_count=len(column) - values,
            distinct=len(counts),
            categories=top,
            other_count=values - sum(top.values()),
        )
    raw = column.numbers()
    nulls = np.isnan(raw)
    null_count = int(nulls.sum())
    ordered = np.sort(raw[~nulls] if null_count else raw)
    distinct = int(np.count_nonzero(ordered[1:] != ordered[:-1])) + 1 if len(ordered) else 0
    if column.kind == "datetime":
        return ColumnProfile(
            **base,
            null_count=null_count,
            distinct=distinct,
            min=float(ordered[0]) if len(ordered) else None,
            max=float(ordered[-1]) if len(ordered) else None,
        )
    low = int(np.searchsorted(ordered, -np.inf, side="right"))
    high = int(np.searchsorted(ordered, np.inf, side="left"))
    finite = ordered[low:high]
    summary: dict[str, Any] = {"infinite_count": len(ordered) - len(finite)}
    if len(finite):
        edges = _edges(finite)
        below = np.searchsorted(ordered, edges, side="left")
        bins = np.diff(np.concatenate(([0], below, [len(ordered)])))
        sample: list[float] = []
        if sample_rows is not None and len(sample_rows):
            picked = raw[sample_rows]
            sample = picked[np.isfinite(picked)].tolist()
        summary.update(
            min=float(finite[0]),
            max=float(finite[-1]),
            mean=float(finite.mean()),
            std=float(finite.std()),
            edges=edges.tolist(),
            shares=(bins / len(ordered)).tolist(),
            quantiles=sorted_quantiles(finite, PERCENTILES).tolist(),
            sample=sample,
            **_atoms(finite),
        )
    return ColumnProfile(**base, null_count=null_count, distinct=distinct, **summary)


def _atoms(finite: NDArray[np.float64]) -> dict[str, Any]:
    """`atoms`, `atom_counts` and `atom_error` of sorted finite values (see `ColumnProfile`)."""
    starts = np.flatnonzero(np.concatenate(([True], finite[1:] != finite[:-1])))
    if len(starts) <= ATOMS:
        counts = np.diff(np.append(starts, len(finite)))
        return {"atoms": finite[starts].tolist(), "atom_counts": counts.tolist(), "atom_error": 0.0}
    # Contiguous groups of the sorted values, each moved to its median: that plan is monotone, so its cost
    # is exactly the 1-Wasserstein distance between the values and the atoms.
    counts = np.diff(np.linspace(0, len(finite), ATOMS + 1).astype(np.intp))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    medians = (finite[starts + (counts - 1) // 2] + finite[starts + counts // 2]) / 2
    cost = float(np.abs(finite - np.repeat(medians, counts)).sum())
    return {"atoms": medians.tolist(), "atom_counts": counts.tolist(), "atom_error": cost / len(finite)}


def negligible_spread(std: float, magnitude: float) -> bool:
    """Whether a standard deviation is float noise for values up to `magnitude` in absolute value."""
    return std <= SPREAD_TOLERANCE * max(1.0, magnitude)


def _edges(finite: NDArray[np.float64]) -> NDArray[np.float64]:
    """Interior bin edges of sorted finite values: the `EDGE_PROBABILITIES` quantiles, with one more edge
    just above the maximum when values sit on the top edge, so values above the reference's range get a bin
    of their own. A constant column (spread within `SPREAD_TOLERANCE`) gets the edges constant -/+ tolerance."""
    low, high = float(finite[0]), float(finite[-1])
    magnitude = max(abs(low), abs(high))
    if negligible_spread(float(finite.std()), magnitude):
        tolerance = SPREAD_TOLERANCE * max(1.0, magnitude)
        return np.array([low - tolerance, high + tolerance])
    edges = np.unique(sorted_quantiles(finite, EDGE_PROBABILITIES))
    if edges[-1] >= high:
        edges = np.append(edges, np.nextafter(high, np.inf))
    return edges


def sorted_quantiles(ordered: NDArray[np.float64], probabilities: Sequence[float]) -> NDArray[np.float64]:
    """Quantiles of an already sorted array, linear interpolation (numpy's default method)."""
    position = np.asarray(probabilities, dtype=np.float64) * (len(ordered) - 1)
    below = np.floor(position).astype(np.intp)
    above = np.minimum(below + 1, len(ordered) - 1)
    fraction = position - below
    result: NDArray[np.float64] = ordered[below] + fraction * (ordered[above] - ordered[below])
    return result


def _sample_rows(rows: int, size: int, rng: np.random.Generator) -> NDArray[np.intp]:
    if rows <= size:
        return np.arange(rows, dtype=np.intp)
    return np.sort(rng.choice(rows, size=size, replace=False)).astype(np.intp)


def _encode(value: Any) -> Any:
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    return value
