"""Checking a whole batch against a contract, vectorised one column at a time (numpy and Arrow)."""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

from loopml.data._columns import Column, Source, Table
from loopml.data.contracts import ColumnContract, Contract, Severity

MAX_EXAMPLES = 5
MAX_EXAMPLE_TEXT = 80


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: how many rows failed it (of `total`) and up to five of them."""

    check: str
    column: str | None
    severity: Severity
    passed: bool
    failing: int
    total: int
    message: str
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "column": self.column,
            "severity": self.severity,
            "passed": self.passed,
            "failing": self.failing,
            "total": self.total,
            "message": self.message,
            "examples": self.examples,
        }


@dataclass(frozen=True)
class ContractReport:
    """Every check of a contract on one batch. `passed` is False when a blocking check failed."""

    rows: int
    results: list[CheckResult]

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def blocking(self) -> list[CheckResult]:
        return [r for r in self.failures if r.severity == "block"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.failures if r.severity == "warn"]

    @property
    def passed(self) -> bool:
        return not self.blocking

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows": self.rows,
            "checks": len(self.results),
            "blocking": len(self.blocking),
            "warnings": len(self.warnings),
            "failures": [r.to_dict() for r in self.failures],
        }


def validate_batch(source: Source, contract: Contract, *, now: datetime.datetime | None = None) -> ContractReport:
    """Run every check of `contract` on a batch (DataFrame, Arrow table or .csv/.parquet path).

    Hostile input gives failed checks, never an exception: wrong types, all-null or missing columns,
    unseen categories, NaN and infinities, empty frames.

    >>> import pandas as pd
    >>> from loopml.data import infer_contract
    >>> contract = infer_contract(pd.DataFrame({"x": [1.0, 2.0]}))
    >>> report = validate_batch(pd.DataFrame({"x": [1.5, None]}), contract)
    >>> report.passed, [(r.check, r.failing) for r in report.failures]
    (False, [('nulls', 1)])
    """
    table = Table(source)
    results: list[CheckResult] = []
    if contract.rows is not None:
        results.append(_row_count(table.num_rows, contract))
    for spec in contract.columns.values():
        if spec.name not in table.names:
            results.append(
                CheckResult(
                    "dtype", spec.name, spec.dtype.severity, False, table.num_rows, table.num_rows, "column is missing"
                )
            )
            continue
        results.extend(_column_checks(table.column(spec.name), spec))
    if contract.freshness is not None:
        results.append(_freshness(table, contract, now or datetime.datetime.now(datetime.timezone.utc)))
    return ContractReport(rows=table.num_rows, results=results)


def _row_count(rows: int, contract: Contract) -> CheckResult:
    check = contract.rows
    assert check is not None
    too_few = check.min is not None and rows < check.min
    too_many = check.max is not None and rows > check.max
    bounds = f"[{check.min if check.min is not None else 0}, {check.max if check.max is not None else 'any'}]"
    message = f"{rows} rows, expected {bounds}"
    return CheckResult(
        "rows", None, check.severity, not (too_few or too_many), rows if too_few or too_many else 0, rows, message
    )


def _column_checks(column: Column, spec: ColumnContract) -> list[CheckResult]:
    rows = len(column)
    results = []
    numbers, type_result = _type_check(column, spec)
    results.append(type_result)
    if spec.nulls is not None:
        nulls = _null_mask(column)
        count = int(nulls.sum())
        rate = count / rows if rows else 0.0
        passed = rate <= spec.nulls.max_rate if spec.nulls.max_rate > 0 else count == 0
        limit = "no nulls" if spec.nulls.max_rate == 0 else f"at most {spec.nulls.max_rate:.4g}"
        results.append(
            CheckResult(
                "nulls",
                spec.name,
                spec.nulls.severity,
                passed,
                count if not passed else 0,
                rows,
                f"null rate {rate:.4g}, expected {limit}",
                _examples(column, nulls) if not passed else [],
            )
        )
    if spec.range is not None and numbers is not None:
        low, high = spec.range.low, spec.range.high
        with np.errstate(invalid="ignore"):
            outside = (numbers < low) | (numbers > high)
        count = int(outside.sum())
        results.append(
            CheckResult(
                "range",
                spec.name,
                spec.range.severity,
                count == 0,
                count,
                rows,
                f"{count} values outside [{low:.6g}, {high:.6g}]",
                _examples(column, outside),
            )
        )
    if spec.categories is not None:
        codes, texts = column.codes()
        allowed = set(spec.categories.allowed)
        unseen = [i for i, text in enumerate(texts) if text not in allowed]
        bad = np.isin(codes, unseen) if unseen else np.zeros(rows, dtype=bool)
        count = int(bad.sum())
        names = ", ".join(repr(_short(texts[i])) for i in unseen[:MAX_EXAMPLES])
        more = f" and {len(unseen) - MAX_EXAMPLES} more" if len(unseen) > MAX_EXAMPLES else ""
        message = f"{count} values not allowed: {names}{more}" if count else "all values allowed"
        results.append(
            CheckResult(
                "categories",
                spec.name,
                spec.categories.severity,
                count == 0,
                count,
                rows,
                message,
                _examples(column, bad),
            )
        )
    if spec.unique is not None:
        codes, _ = column.codes()
        valid = codes >= 0
        seen = np.bincount(codes[valid]) if valid.any() else np.zeros(0, dtype=np.intp)
        duplicated = np.zeros(rows, dtype=bool)
        duplicated[valid] = seen[codes[valid]] > 1
        count = int(duplicated.sum())
        results.append(
            CheckResult(
                "unique",
                spec.name,
                spec.unique.severity,
                count == 0,
                count,
                rows,
                f"{count} rows share a value with another row",
                _examples(column, duplicated),
            )
        )
    return results


def _type_check(column: Column, spec: ColumnContract) -> tuple[NDArray[np.float64] | None, CheckResult]:
    """The column's values as numbers (for the range check) and the type check's result."""
    rows = len(column)
    expected = spec.dtype.type
    actual = column.logical
    bad = np.zeros(rows, dtype=bool)
    numbers: NDArray[np.float64] | None = None
    if expected in ("integer", "float"):
        if column.kind == "numeric":
            numbers = column.numbers()
        elif actual == "string":
            series = column.to_pandas()
            numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            bad = np.isnan(numbers) & series.notna().to_numpy()
        else:
            bad = ~_null_mask(column)
        if expected == "integer" and numbers is not None and actual != "integer":
            with np.errstate(invalid="ignore"):
                bad |= ~np.isnan(numbers) & (numbers != np.trunc(numbers))
    elif expected == "datetime":
        if actual == "string":
            series = column.to_pandas()
            parsed = pd.to_datetime(series, errors="coerce", format="mixed", utc=True)
            bad = (parsed.isna() & series.notna()).to_numpy()
        elif actual != "datetime":
            bad = ~_null_mask(column)
    elif actual != expected:
        bad = ~_null_mask(column)
    count = int(bad.sum())
    message = f"type {actual}, expected {expected}" + (f"; {count} values are not {expected}" if count else "")
    result = CheckResult(
        "dtype", spec.name, spec.dtype.severity, count == 0, count, rows, message, _examples(column, bad)
    )
    return numbers, result


def _null_mask(column: Column) -> NDArray[np.bool_]:
    mask = np.asarray(column.data.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if column.logical == "float" and not pa.types.is_decimal(column.data.type):
        mask |= np.isnan(column.numbers())
    return mask


def _freshness(table: Table, contract: Contract, now: datetime.datetime) -> CheckResult:
    check = contract.freshness
    assert check is not None
    max_age = check.max_age_seconds
    if check.column not in table.names:
        return CheckResult(
            "freshness", check.column, check.severity, False, table.num_rows, table.num_rows, "column is missing"
        )
    column = table.column(check.column)
    seconds: NDArray[np.float64]
    if column.logical == "datetime":
        seconds = column.numbers()
    else:
        parsed = pd.to_datetime(column.to_pandas(), errors="coerce", format="mixed", utc=True)
        stamps = (parsed.astype("int64") / 1e9).where(parsed.notna())
        seconds = np.asarray(stamps.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    finite = seconds[np.isfinite(seconds)]
    if not len(finite):
        return CheckResult(
            "freshness", check.column, check.severity, False, 0, table.num_rows, "no timestamps to check"
        )
    newest = float(finite.max())
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.timezone.utc)
    age = now.timestamp() - newest
    stamp = datetime.datetime.fromtimestamp(newest, tz=datetime.timezone.utc).isoformat(timespec="seconds")
    return CheckResult(
        "freshness",
        check.column,
        check.severity,
        age <= max_age,
        0,
        table.num_rows,
        f"newest value {stamp} is {_age(age)} old, expected at most {check.max_age}",
    )


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def _examples(column: Column, mask: NDArray[np.bool_]) -> list[dict[str, Any]]:
    rows = np.flatnonzero(mask)[:MAX_EXAMPLES]
    if not len(rows):
        return []
    values = column.data.take(pa.array(rows, type=pa.int64())).to_pylist()
    return [{"row": int(row), "value": _example_value(value)} for row, value in zip(rows, values, strict=True)]


def _example_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    return _short(str(value))


def _short(text: str) -> str:
    return text if len(text) <= MAX_EXAMPLE_TEXT else text[:MAX_EXAMPLE_TEXT] + f"... ({len(text)} chars)"
