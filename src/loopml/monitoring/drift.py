"""Drift of a current window against a stored reference `Profile`, per column and for the dataset.

The statistics (`psi`, `wasserstein_normalised`, `ks`, `chi_square`, `jensen_shannon`) are plain
functions on arrays. `column_drift` applies one of them to a column profile and current values; only KS
needs raw reference values, and it uses the profile's seeded sample, so it is the default only for small
windows. Defaults (see docs/monitoring.md for why):

| kind        | values compared < 1,000  | values compared >= 1,000             |
| ----------- | ------------------------ | ------------------------------------ |
| numeric     | ks, drift if p < 0.01    | psi on reference bins, drift >= 0.1  |
| categorical | chi_square, p < 0.01     | jensen_shannon distance, drift >= 0.1 |
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from loopml.data import SPREAD_TOLERANCE, Column, ColumnProfile, Profile, Table, negligible_spread, segment_rows
from loopml.data import Source as DataSource
from loopml.errors import InvalidInput

SMALL_SAMPLE = 1000
"""Below this many values on either side, the defaults are the tests (KS, chi-square) at p < 0.01."""
PSI_FLOOR = 1e-4
"""Empty bins count as this share, as in Evidently, so an empty bin gives a finite PSI."""
PSI_BANDS = ((0.25, "significant"), (0.1, "moderate"), (0.0, "none"))


# --- the statistics ---------------------------------------------------------------------------------


def psi(reference: ArrayLike, current: ArrayLike, *, floor: float = PSI_FLOOR) -> float:
    """Population stability index of two binned distributions (counts or shares, same bins):
    sum((c - r) * ln(c / r)) over bins, with shares below `floor` raised to `floor`."""
    r = _shares(reference)
    c = _shares(current)
    if r.shape != c.shape:
        raise InvalidInput(f"psi needs the same bins on both sides, got {r.size} and {c.size}")
    r = np.maximum(r, floor)
    c = np.maximum(c, floor)
    return float(np.sum((c - r) * np.log(c / r)))


def wasserstein_normalised(reference: ArrayLike, current: ArrayLike) -> float:
    """Earth mover's distance between two samples, divided by the reference's standard deviation.

    A reference without spread (`loopml.data.negligible_spread`: std at most 1e-12 times max(1, |value|))
    divides by the spread of both samples pooled instead, and scores 0 when that has none either.
    """
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    distance = float(stats.wasserstein_distance(r, c))
    pooled = np.concatenate([r, c])
    reference_spread = (float(np.std(r)), float(np.max(np.abs(r))))
    return _normalise(distance, reference_spread, (float(np.std(pooled)), float(np.max(np.abs(pooled)))))


def ks(reference: ArrayLike, current: ArrayLike) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (scipy's `ks_2samp`, two-sided, method auto)."""
    result = stats.ks_2samp(np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64))
    return float(result.statistic), float(result.pvalue)


def chi_square(reference_counts: ArrayLike, current_counts: ArrayLike) -> tuple[float, float]:
    """Pearson chi-square test of homogeneity on a 2 x k table of category counts (no continuity
    correction); categories empty on both sides are dropped. Returns (statistic, p-value)."""
    table = np.vstack([np.asarray(reference_counts, dtype=np.float64), np.asarray(current_counts, dtype=np.float64)])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or np.any(table.sum(axis=1) == 0):
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, table.shape[1] - 1))


def jensen_shannon(reference: ArrayLike, current: ArrayLike) -> float:
    """Jensen-Shannon distance (square root of the divergence, natural log) of two distributions
    given as counts or shares over the same categories; 0 for equal, sqrt(ln 2) at most."""
    p = _shares(reference)
    q = _shares(current)
    m = (p + q) / 2
    divergence = (_kl(p, m) + _kl(q, m)) / 2
    return math.sqrt(max(divergence, 0.0))


def _kl(p: NDArray[np.float64], q: NDArray[np.float64]) -> float:
    present = p > 0
    return float(np.sum(p[present] * np.log(p[present] / q[present])))


def _shares(values: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    total = array.sum()
    return array / total if total > 0 else array


def _normalise(distance: float, reference: tuple[float, float], pooled: tuple[float, float]) -> float:
    """`distance` in units of the reference's spread, or of the pooled one if the reference has none;
    each spread comes with the largest absolute value it was measured on."""
    if not negligible_spread(*reference):
        return distance / reference[0]
    if negligible_spread(*pooled):
        return 0.0
    return distance / pooled[0]


# --- methods as configuration ------------------------------------------------------------------------

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class CurrentValues:
    """What a method sees of the current window: finite-or-inf numbers, or category counts."""

    numbers: NDArray[np.float64] | None = None
    counts: dict[str, int] | None = None

    @property
    def size(self) -> int:
        if self.numbers is not None:
            return len(self.numbers)
        return sum(self.counts.values()) if self.counts else 0


@dataclass(frozen=True)
class DriftMethod:
    """A drift method: how to score a column, and when the score means drift.

    `compute(reference, current)` returns (score, p-value or None). A test (`is_test`) drifts when its
    p-value is below the threshold; a distance drifts when its score is at or above it.
    """

    name: str
    kinds: frozenset[str]
    default_threshold: float
    is_test: bool
    compute: Callable[[ColumnProfile, CurrentValues], tuple[float, float | None]] = field(repr=False, compare=False)

    def drifted(self, score: float, p_value: float | None, threshold: float) -> bool:
        if self.is_test:
            return p_value is not None and p_value < threshold
        return not math.isnan(score) and score >= threshold


def _bins(reference: ColumnProfile, current: CurrentValues) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Reference and current counts (or shares) on the reference's bins (numeric) or categories."""
    if reference.kind == "numeric":
        if reference.edges is None or reference.shares is None or current.numbers is None:
            raise InvalidInput(f"{reference.name}: no numeric bins in the reference profile")
        found = bin_counts(np.asarray(reference.edges, dtype=np.float64), current.numbers)
        return np.asarray(reference.shares, dtype=np.float64), found.astype(np.float64)
    return category_counts(reference, current.counts or {})


_FEW_EDGES = 64


def bin_counts(edges: NDArray[np.float64], values: NDArray[np.float64]) -> NDArray[np.int64]:
    """How many `values` (no NaN) fall in each bin of the sorted `edges`: bin i holds edges[i-1] <= v <
    edges[i], the first bin everything below edges[0], the last everything from edges[-1] up; as
    `bincount(searchsorted(edges, values, "right"))`.

    With the few edges of a profile (about a dozen quantile edges), one vectorised comparison per edge is
    about 10x faster than a binary search per value, whose branches the CPU cannot predict."""
    if len(edges) > _FEW_EDGES:
        return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    below = np.fromiter((np.count_nonzero(values < edge) for edge in edges), dtype=np.int64, count=len(edges))
    return np.diff(below, prepend=0, append=len(values))


def category_counts(
    reference: ColumnProfile, current: Mapping[str, int]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Counts over the reference's top categories plus one bucket for everything else (incl. new values)."""
    top = reference.categories or {}
    ref = [*top.values(), reference.other_count or 0]
    cur = [current.get(key, 0) for key in top]
    cur.append(sum(current.values()) - sum(cur))
    return np.asarray(ref, dtype=np.float64), np.asarray(cur, dtype=np.float64)


def _psi(reference: ColumnProfile, current: CurrentValues) -> tuple[float, float | None]:
    ref, cur = _bins(reference, current)
    return psi(ref, cur), None


def _jensen_shannon(reference: ColumnProfile, current: CurrentValues) -> tuple[float, float | None]:
    ref, cur = _bins(reference, current)
    return jensen_shannon(ref, cur), None


def _chi_square(reference: ColumnProfile, current: CurrentValues) -> tuple[float, float | None]:
    ref, cur = category_counts(reference, current.counts or {})
    return chi_square(ref, cur)


def _ks(reference: ColumnProfile, current: CurrentValues) -> tuple[float, float | None]:
    if not reference.sample:
        raise InvalidInput(f"{reference.name}: the reference profile has no sample (build it with sample_size > 0)")
    assert current.numbers is not None
    values = current.numbers[np.isfinite(current.numbers)]
    if not len(values):
        return math.nan, None
    sample = np.asarray(reference.sample, dtype=np.float64)
    magnitude = max(abs(reference.min or 0.0), abs(reference.max or 0.0))
    if reference.mean is not None and negligible_spread(reference.std or 0.0, magnitude):
        # a constant reference: float noise around it, on either side, is the constant itself
        tolerance = SPREAD_TOLERANCE * max(1.0, magnitude)
        sample = np.where(np.abs(sample - reference.mean) <= tolerance, reference.mean, sample)
        values = np.where(np.abs(values - reference.mean) <= tolerance, reference.mean, values)
    return ks(sample, values)


def _wasserstein(reference: ColumnProfile, current: CurrentValues) -> tuple[float, float | None]:
    """The 1-Wasserstein distance between the profile's atoms (exactly the reference values when it has at
    most `ATOMS` distinct values, else within `atom_error`) and the window's finite values."""
    assert current.numbers is not None
    values = current.numbers[np.isfinite(current.numbers)]
    if not len(values):
        return math.nan, None
    if reference.atoms is None or reference.atom_counts is None:
        distance = _wasserstein_from_percentiles(reference, values)
    else:
        atoms = np.asarray(reference.atoms, dtype=np.float64)
        weights = np.asarray(reference.atom_counts, dtype=np.float64)
        distance = float(stats.wasserstein_distance(atoms, values, u_weights=weights))
    # the spread of reference and window pooled, from the reference's moments, for a constant reference
    mean, spread = reference.mean or 0.0, reference.std or 0.0
    n = reference.value_count - reference.infinite_count
    pooled_mean = (n * mean + values.sum()) / (n + len(values))
    pooled_variance = (n * (spread**2 + (mean - pooled_mean) ** 2) + np.sum((values - pooled_mean) ** 2)) / (
        n + len(values)
    )
    magnitude = max(abs(reference.min or 0.0), abs(reference.max or 0.0))
    pooled_magnitude = max(magnitude, float(np.max(np.abs(values))))
    return _normalise(distance, (spread, magnitude), (math.sqrt(pooled_variance), pooled_magnitude)), None


def _wasserstein_from_percentiles(reference: ColumnProfile, values: NDArray[np.float64]) -> float:
    """Profiles written before atoms were kept: the mean absolute difference of the quantile functions
    (trapezoid rule on 0, 1, ..., 100 %), which is the 1-Wasserstein distance up to the grid's error."""
    assert reference.quantiles is not None
    grid = np.linspace(0.0, 1.0, len(reference.quantiles))
    gap = np.abs(np.quantile(values, grid) - np.asarray(reference.quantiles))
    return float(np.sum((gap[1:] + gap[:-1]) / 2) / (len(gap) - 1))


METHODS: dict[str, DriftMethod] = {}
"""Drift methods by name; `register_method` adds one (an extension point)."""


def register_method(method: DriftMethod) -> DriftMethod:
    METHODS[method.name] = method
    return method


for _method in (
    DriftMethod("psi", frozenset({"numeric", "categorical"}), 0.1, is_test=False, compute=_psi),
    DriftMethod("wasserstein", frozenset({"numeric"}), 0.1, is_test=False, compute=_wasserstein),
    DriftMethod("ks", frozenset({"numeric"}), 0.01, is_test=True, compute=_ks),
    DriftMethod("chi_square", frozenset({"categorical"}), 0.01, is_test=True, compute=_chi_square),
    DriftMethod("jensen_shannon", frozenset({"numeric", "categorical"}), 0.1, is_test=False, compute=_jensen_shannon),
):
    register_method(_method)


def default_method(kind: str, n_reference: int, n_current: int) -> DriftMethod:
    """The method used when none is given: tests for small samples, distances on bins for large ones."""
    small = min(n_reference, n_current) < SMALL_SAMPLE
    if kind == "numeric":
        return METHODS["ks" if small else "psi"]
    return METHODS["chi_square" if small else "jensen_shannon"]


# --- results -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnDrift:
    """The drift of one column: which method, its score and threshold, and the verdict."""

    column: str
    method: str
    score: float
    threshold: float
    drifted: bool
    p_value: float | None
    n_ref: int
    n_cur: int
    band: str | None = None
    """For PSI: "none" (< 0.1), "moderate" (0.1-0.25) or "significant" (>= 0.25)."""
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: _json_float(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class SegmentDrift:
    """Drift of the rows of one segment (segment column = value) against the same segment of the reference."""

    segment: str
    value: str
    n_ref: int
    n_cur: int
    drifted_share: float
    drifted: bool
    columns: list[ColumnDrift]
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "value": self.value,
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            "drifted_share": _json_float(self.drifted_share),
            "drifted": self.drifted,
            "note": self.note,
            "columns": [c.to_dict() for c in self.columns],
        }


@dataclass(frozen=True)
class DriftReport:
    """Per-column drift of the features, the dataset verdict, and prediction, label and segment drift."""

    columns: list[ColumnDrift]
    drifted_share: float
    share_threshold: float
    drifted: bool
    weighted: bool
    n_ref: int
    n_cur: int
    prediction: ColumnDrift | None = None
    label: ColumnDrift | None = None
    segments: list[SegmentDrift] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def __getitem__(self, column: str) -> ColumnDrift:
        for found in self.columns:
            if found.column == column:
                return found
        raise KeyError(column)

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "drifted_share": _json_float(self.drifted_share),
            "share_threshold": self.share_threshold,
            "weighted": self.weighted,
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            "drifted_columns": self.drifted_columns,
            "missing_columns": self.missing_columns,
            "columns": [c.to_dict() for c in self.columns],
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "label": self.label.to_dict() if self.label else None,
            "segments": [s.to_dict() for s in self.segments],
        }


def _json_float(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


# --- column and dataset drift ----------------------------------------------------------------------------

MethodChoice = str | DriftMethod


def column_drift(
    reference: ColumnProfile,
    current: Column | ArrayLike | Mapping[str, int],
    method: MethodChoice | None = None,
    threshold: float | None = None,
) -> ColumnDrift:
    """Drift of one column: `current` is raw values (numbers, or category values), or category counts.

    >>> import numpy as np, pandas as pd
    >>> from loopml.data import build_profile
    >>> ref = build_profile(pd.DataFrame({"x": np.random.default_rng(0).normal(size=5000)}))
    >>> result = column_drift(ref["x"], np.random.default_rng(1).normal(1.0, size=2000))
    >>> result.method, result.threshold, result.drifted
    ('psi', 0.1, True)
    """
    values = _current_values(reference, current)
    if reference.kind not in ("numeric", "categorical"):
        raise InvalidInput(f"{reference.name}: drift is not measured on {reference.kind} columns")
    n_ref = reference.value_count
    n_cur = values.size
    chosen = _resolve(method) if method is not None else default_method(reference.kind, n_ref, n_cur)
    if reference.kind not in chosen.kinds:
        raise InvalidInput(f"{reference.name}: method {chosen.name!r} does not apply to {reference.kind} columns")
    limit = chosen.default_threshold if threshold is None else float(threshold)
    if n_cur == 0 or n_ref == 0:
        side = "current window" if n_cur == 0 else "reference"
        return ColumnDrift(
            reference.name,
            chosen.name,
            math.nan,
            limit,
            False,
            None,
            n_ref,
            n_cur,
            note=f"no non-null values in the {side}",
        )
    score, p_value = chosen.compute(reference, values)
    band = next(name for bound, name in PSI_BANDS if score >= bound) if chosen.name == "psi" else None
    return ColumnDrift(
        column=reference.name,
        method=chosen.name,
        score=score,
        threshold=limit,
        drifted=chosen.drifted(score, p_value, limit),
        p_value=p_value,
        n_ref=n_ref,
        n_cur=n_cur,
        band=band,
    )


def _resolve(method: MethodChoice) -> DriftMethod:
    if isinstance(method, DriftMethod):
        return method
    try:
        return METHODS[method]
    except KeyError:
        raise InvalidInput(f"unknown drift method {method!r}; known: {', '.join(sorted(METHODS))}") from None


def _current_values(reference: ColumnProfile, current: Column | ArrayLike | Mapping[str, int]) -> CurrentValues:
    if isinstance(current, Mapping):
        return CurrentValues(counts={str(k): int(v) for k, v in current.items()})
    if not isinstance(current, Column):
        import pyarrow as pa

        array = np.asarray(current)
        if reference.kind == "numeric" and array.dtype.kind in "fiub":
            data = pa.chunked_array([pa.array(array.astype(np.float64), from_pandas=True)])
        else:
            data = pa.chunked_array([pa.array(array.tolist(), from_pandas=True)])
        current = Column(reference.name, data)
    if reference.kind == "numeric":
        if current.kind != "numeric":
            raise InvalidInput(f"{reference.name}: the reference is numeric, the current values are {current.logical}")
        numbers = current.numbers()
        return CurrentValues(numbers=numbers[~np.isnan(numbers)])
    return CurrentValues(counts=current.counts())


def dataset_drift(
    reference: Profile,
    current: DataSource,
    *,
    columns: Sequence[str] | None = None,
    methods: Mapping[str, MethodChoice] | None = None,
    thresholds: Mapping[str, float] | None = None,
    share_threshold: float = 0.5,
    weights: Mapping[str, float] | None = None,
    segments: Sequence[str] | None = None,
    max_segments: int = 20,
    prediction_column: str | None = None,
    label_column: str | None = None,
) -> DriftReport:
    """Drift of every feature column of `current` against `reference`, and the dataset verdict.

    The dataset drifts when the share of drifted feature columns is at least `share_threshold`; with
    `weights` (feature importances) the share is weighted (columns without a weight count 0). Prediction
    and label columns (from the arguments or the profile) are reported apart and never count in the share.
    `segments` names columns the reference was profiled by (`build_profile(segments=...)`): each of the
    `max_segments` largest segments of the current window is compared to the same segment of the reference.
    Datetime columns are skipped unless named in `columns`.
    """
    if not 0 < share_threshold <= 1:
        raise InvalidInput("share_threshold must be in (0, 1]")
    table = Table(current)
    prediction_column = prediction_column or reference.prediction_column
    label_column = label_column or reference.label_column
    roles = {name for name in (prediction_column, label_column) if name}
    if columns is None:
        features = [n for n, c in reference.columns.items() if n not in roles and c.kind != "datetime"]
    else:
        features = [n for n in columns if n not in roles]
    for name in features:
        reference[name]
    missing = [n for n in features if n not in table.names]
    present = [n for n in features if n in table.names]
    methods = methods or {}
    thresholds = thresholds or {}

    def drift_of(profile: Profile, name: str, column: Column) -> ColumnDrift:
        return column_drift(profile[name], column, methods.get(name), thresholds.get(name))

    results = [drift_of(reference, c.name, c) for c in table.columns(present)]
    share = _share(results, weights)
    role_results: dict[str, ColumnDrift | None] = {}
    for role in (prediction_column, label_column):
        if role and role in table.names and role in reference.columns:
            role_results[role] = drift_of(reference, role, table.column(role))
    segment_results = [
        segment
        for key in segments or ()
        for segment in _segment_drift(reference, table, key, present, max_segments, share_threshold, weights, drift_of)
    ]
    return DriftReport(
        columns=results,
        drifted_share=share,
        share_threshold=share_threshold,
        drifted=share >= share_threshold,
        weighted=weights is not None,
        n_ref=reference.row_count,
        n_cur=table.num_rows,
        prediction=role_results.get(prediction_column) if prediction_column else None,
        label=role_results.get(label_column) if label_column else None,
        segments=segment_results,
        missing_columns=missing,
    )


def _share(results: Sequence[ColumnDrift], weights: Mapping[str, float] | None) -> float:
    scored = [r for r in results if r.note is None]
    if not scored:
        return 0.0
    if weights is None:
        return sum(r.drifted for r in scored) / len(scored)
    if any(w < 0 or not math.isfinite(w) for w in weights.values()):
        raise InvalidInput("feature weights must be finite and non-negative")
    total = sum(weights.get(r.column, 0.0) for r in scored)
    if total <= 0:
        raise InvalidInput("the weights of the checked columns add up to 0")
    return sum(weights.get(r.column, 0.0) for r in scored if r.drifted) / total


def _segment_drift(
    reference: Profile,
    table: Table,
    key: str,
    features: Sequence[str],
    max_segments: int,
    share_threshold: float,
    weights: Mapping[str, float] | None,
    drift_of: Callable[[Profile, str, Column], ColumnDrift],
) -> list[SegmentDrift]:
    if key not in reference.segments:
        raise InvalidInput(f"the reference has no segment profiles for {key!r}; build it with segments=[{key!r}]")
    if key not in table.names:
        raise InvalidInput(f"no segment column {key!r} in the current data")
    by_value = reference.segments[key]
    found = []
    others = [name for name in features if name != key]
    columns = {name: table.column(name) for name in others}
    for value, rows in segment_rows(table.column(key), max_segments).items():
        if value not in by_value:
            found.append(SegmentDrift(key, value, 0, len(rows), 1.0, True, [], note="segment not in the reference"))
            continue
        results = [drift_of(by_value[value], name, columns[name].take(rows)) for name in others]
        share = _share(results, weights)
        found.append(
            SegmentDrift(key, value, by_value[value].row_count, len(rows), share, share >= share_threshold, results)
        )
    return found
