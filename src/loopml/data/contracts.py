"""Data contracts: the checks a batch or a request must pass, inferred from a reference, kept as YAML.

A contract lists, per column, a type, a null-rate limit, a range (with a tolerance), allowed categories
and uniqueness, plus row-count bounds and freshness for the dataset. Every check carries a severity:
`warn` (report it) or `block` (reject the request with 422, fail the batch, exit 1 in CI).

This module is pure Python and PyYAML: `compile_row_validator` checks one request in a few microseconds
without pandas. Batch checks live in `loopml.data.validation`.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

import yaml

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    from loopml.data._columns import Source
    from loopml.data.profiles import Profile

Severity = Literal["warn", "block"]
ColumnType = Literal["integer", "float", "boolean", "string", "datetime"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
TYPES: tuple[str, ...] = get_args(ColumnType)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TypeCheck:
    type: ColumnType
    severity: Severity = "block"


@dataclass(frozen=True)
class NullCheck:
    """At most `max_rate` of the rows may be null; 0 means the column is not nullable."""

    max_rate: float = 0.0
    severity: Severity = "block"


@dataclass(frozen=True)
class RangeCheck:
    """Values must lie in [min - tolerance * span, max + tolerance * span], span = max - min."""

    min: float | None = None
    max: float | None = None
    tolerance: float = 0.0
    severity: Severity = "warn"

    @property
    def low(self) -> float:
        return -math.inf if self.min is None else self.min - self.tolerance * self._span

    @property
    def high(self) -> float:
        return math.inf if self.max is None else self.max + self.tolerance * self._span

    @property
    def _span(self) -> float:
        return self.max - self.min if self.min is not None and self.max is not None else 0.0


@dataclass(frozen=True)
class CategoryCheck:
    allowed: list[str]
    severity: Severity = "warn"


@dataclass(frozen=True)
class UniqueCheck:
    severity: Severity = "warn"


@dataclass(frozen=True)
class RowCountCheck:
    min: int | None = None
    max: int | None = None
    severity: Severity = "warn"


@dataclass(frozen=True)
class FreshnessCheck:
    """The newest value of `column` must be at most `max_age` old ("30m", "12h", "2d", "1w" or seconds)."""

    column: str
    max_age: str
    severity: Severity = "warn"

    @property
    def max_age_seconds(self) -> float:
        return parse_age(self.max_age)


@dataclass(frozen=True)
class ColumnContract:
    name: str
    dtype: TypeCheck
    nulls: NullCheck | None = None
    range: RangeCheck | None = None
    categories: CategoryCheck | None = None
    unique: UniqueCheck | None = None


@dataclass(frozen=True)
class Contract:
    """What a dataset must look like. Read and write it with `to_yaml` / `from_yaml`."""

    columns: dict[str, ColumnContract]
    rows: RowCountCheck | None = None
    freshness: FreshnessCheck | None = None
    name: str | None = None
    version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"version": self.version}
        if self.name is not None:
            document["name"] = self.name
        if self.rows is not None:
            document["rows"] = _compact(self.rows)
        if self.freshness is not None:
            document["freshness"] = _compact(self.freshness)
        document["columns"] = {
            name: {
                key: _compact(check)
                for key in ("dtype", "nulls", "range", "categories", "unique")
                if (check := getattr(column, key)) is not None
            }
            for name, column in self.columns.items()
        }
        return document

    def to_yaml(self) -> str:
        body = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, allow_unicode=True, width=120)
        return HEADER + body

    @classmethod
    def from_yaml(cls, text: str, *, source: str = "contract") -> Contract:
        """Parse a contract; a malformed file raises InvalidInput naming the line and the field."""
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            document = yaml.safe_load(text)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            where = f"line {mark.line + 1}" if mark is not None else "somewhere"
            raise InvalidInput(f"{source}: {where}: not valid YAML: {error.problem or error}") from None
        except yaml.YAMLError as error:
            raise InvalidInput(f"{source}: not valid YAML: {error}") from None
        lines = _lines(node) if node is not None else {}
        try:
            return _contract_from(document)
        except _Bad as bad:
            line = next((lines[bad.path[:n]] for n in range(len(bad.path), -1, -1) if bad.path[:n] in lines), None)
            where = f"line {line}, " if line is not None else ""
            field_name = ".".join(bad.path) or "(top level)"
            raise InvalidInput(f"{source}: {where}{field_name}: {bad.message}") from None


HEADER = (
    "# loopml data contract. Edit freely: each check has a severity, warn (reported) or block (the batch\n"
    "# fails, `loopml data validate` exits 1, a serving request is rejected with 422).\n"
    "# range allows [min - tolerance * (max - min), max + tolerance * (max - min)]; nulls.max_rate 0 = not nullable.\n"
)


def _compact(check: Any) -> dict[str, Any]:
    return {key: value for key, value in vars(check).items() if value is not None}


# --- parsing, with the line of every field -------------------------------------------------------------


class _Bad(Exception):
    def __init__(self, path: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def _lines(node: yaml.Node, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    found = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            found[child] = key.start_mark.line + 1
            found.update({k: v for k, v in _lines(value, child).items() if k != child})
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.update(_lines(item, (*path, str(index))))
    return found


def _mapping(value: Any, path: tuple[str, ...], allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(path, f"expected a mapping, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise _Bad(path, f"keys must be text, got {key!r}")
        if key not in allowed:
            raise _Bad((*path, key), f"unknown field; expected one of {', '.join(sorted(allowed))}")
    return value


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _number(value: Any, path: tuple[str, ...], *, optional: bool = True) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise _Bad(path, f"expected a number, got {value!r}")
    return float(value)


def _count(value: Any, path: tuple[str, ...]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _Bad(path, f"expected a whole number >= 0, got {value!r}")
    return value


def _severity(check: Mapping[str, Any], path: tuple[str, ...], default: Severity) -> Severity:
    value = check.get("severity", default)
    if value not in SEVERITIES:
        raise _Bad((*path, "severity"), f"expected warn or block, got {value!r}")
    return cast(Severity, value)


def _contract_from(document: Any) -> Contract:
    top = _mapping(document, (), {"version", "name", "rows", "freshness", "columns"})
    if top.get("version", FORMAT_VERSION) != FORMAT_VERSION:
        raise _Bad(("version",), f"unsupported version {top.get('version')!r} (expected {FORMAT_VERSION})")
    name = top.get("name")
    if name is not None and not isinstance(name, str | int | float):
        raise _Bad(("name",), f"expected text, got {_kind(name)}")
    rows = None
    if top.get("rows") is not None:
        check = _mapping(top["rows"], ("rows",), {"min", "max", "severity"})
        rows = RowCountCheck(
            min=_count(check.get("min"), ("rows", "min")),
            max=_count(check.get("max"), ("rows", "max")),
            severity=_severity(check, ("rows",), "warn"),
        )
    freshness = None
    if top.get("freshness") is not None:
        check = _mapping(top["freshness"], ("freshness",), {"column", "max_age", "severity"})
        column, age = check.get("column"), check.get("max_age")
        if not isinstance(column, str):
            raise _Bad(("freshness", "column"), f"expected a column name, got {column!r}")
        age_text = str(age)
        try:
            parse_age(age_text)
        except ValueError as error:
            raise _Bad(("freshness", "max_age"), str(error)) from None
        freshness = FreshnessCheck(column, age_text, _severity(check, ("freshness",), "warn"))
    raw_columns = top.get("columns")
    if raw_columns is None:
        raise _Bad(("columns",), "missing: a contract lists its columns")
    if not isinstance(raw_columns, dict):
        raise _Bad(("columns",), f"expected a mapping of column name to checks, got {_kind(raw_columns)}")
    columns = {str(name): _column_from(str(name), spec, ("columns", str(name))) for name, spec in raw_columns.items()}
    return Contract(columns=columns, rows=rows, freshness=freshness, name=None if name is None else str(name))


def _column_from(name: str, spec: Any, path: tuple[str, ...]) -> ColumnContract:
    checks = _mapping(spec, path, {"dtype", "nulls", "range", "categories", "unique"})
    if "dtype" not in checks:
        raise _Bad(path, "missing dtype (one of " + ", ".join(TYPES) + ")")
    raw_type = checks["dtype"]
    if isinstance(raw_type, str):  # shorthand `dtype: float`
        raw_type = {"type": raw_type}
    type_check = _mapping(raw_type, (*path, "dtype"), {"type", "severity"})
    if type_check.get("type") not in TYPES:
        raise _Bad((*path, "dtype", "type"), f"expected one of {', '.join(TYPES)}, got {type_check.get('type')!r}")
    dtype = TypeCheck(cast(ColumnType, type_check["type"]), _severity(type_check, (*path, "dtype"), "block"))
    nulls = None
    if checks.get("nulls") is not None:
        check = _mapping(checks["nulls"], (*path, "nulls"), {"max_rate", "severity"})
        rate = _number(check.get("max_rate", 0.0), (*path, "nulls", "max_rate"), optional=False)
        if rate is None or not 0 <= rate <= 1:
            raise _Bad((*path, "nulls", "max_rate"), f"expected a rate between 0 and 1, got {rate!r}")
        nulls = NullCheck(rate, _severity(check, (*path, "nulls"), "block"))
    value_range = None
    if checks.get("range") is not None:
        p = (*path, "range")
        check = _mapping(checks["range"], p, {"min", "max", "tolerance", "severity"})
        low, high = _number(check.get("min"), (*p, "min")), _number(check.get("max"), (*p, "max"))
        tolerance = _number(check.get("tolerance", 0.0), (*p, "tolerance"), optional=False) or 0.0
        if low is not None and high is not None and low > high:
            raise _Bad(p, f"min {low} is above max {high}")
        if tolerance < 0:
            raise _Bad((*p, "tolerance"), "expected a tolerance >= 0")
        value_range = RangeCheck(low, high, tolerance, _severity(check, p, "warn"))
    categories = None
    if checks.get("categories") is not None:
        p = (*path, "categories")
        check = _mapping(checks["categories"], p, {"allowed", "severity"})
        allowed = check.get("allowed")
        if not isinstance(allowed, list) or any(isinstance(v, dict | list) or v is None for v in allowed):
            raise _Bad((*p, "allowed"), "expected a list of values")
        categories = CategoryCheck([_category_text(v) for v in allowed], _severity(check, p, "warn"))
    unique = None
    if checks.get("unique") is not None:
        raw_unique = checks["unique"]
        if raw_unique is True:
            raw_unique = {}
        check = _mapping(raw_unique, (*path, "unique"), {"severity"})
        unique = UniqueCheck(_severity(check, (*path, "unique"), "warn"))
    return ColumnContract(name, dtype, nulls, value_range, categories, unique)


def _category_text(value: Any) -> str:
    return str(value)


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    """Seconds in "90", "30m", "12h", "2d" or "1w"."""
    found = _AGE.match(str(text))
    if not found:
        raise ValueError(f"expected an age like 30m, 12h, 2d or 1w, got {text!r}")
    return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]


# --- inference -------------------------------------------------------------------------------------------


def infer_contract(
    reference: Profile | Source,
    *,
    name: str | None = None,
    range_tolerance: float = 0.1,
    null_tolerance: float = 0.05,
    max_categories: int = 50,
    min_rows: int | None = 1,
    max_rows: int | None = None,
    freshness_column: str | None = None,
    max_age: str | None = None,
) -> Contract:
    """A contract that the reference passes, with room for ordinary variation.

    Types and non-nullability block; null rates (reference rate + `null_tolerance`), ranges (widened by
    `range_tolerance` of the span), categories (when all of at most `max_categories` are known),
    uniqueness (integer and text columns that were unique) and row counts warn. Freshness is added when
    `max_age` is given, on `freshness_column` or the first datetime column.

    >>> import pandas as pd
    >>> contract = infer_contract(pd.DataFrame({"x": [1.0, 2.0], "city": ["a", "b"]}))
    >>> contract.columns["x"].range
    RangeCheck(min=1.0, max=2.0, tolerance=0.1, severity='warn')
    """
    from loopml.data.profiles import Profile, build_profile

    profile = (
        reference if isinstance(reference, Profile) else build_profile(reference, sample_size=0, top_k=max_categories)
    )
    columns = {}
    for column in profile.columns.values():
        nulls = (
            NullCheck(0.0, "block")
            if column.null_count == 0
            else NullCheck(round(min(1.0, column.null_rate + null_tolerance), 6), "warn")
        )
        value_range = None
        if column.kind == "numeric" and column.min is not None and column.max is not None:
            low, high = column.min, column.max
            if column.dtype == "integer":  # written as 3, not 3.0, in the YAML
                low, high = int(low), int(high)
            value_range = RangeCheck(low, high, range_tolerance, "warn")
        categories = None
        if (
            column.kind == "categorical"
            and column.categories
            and not column.other_count
            and len(column.categories) <= max_categories
            and not column.unique
        ):
            categories = CategoryCheck(sorted(column.categories), "warn")
        unique = (
            UniqueCheck("warn")
            if column.unique and column.value_count > 1 and column.dtype in ("integer", "string")
            else None
        )
        columns[column.name] = ColumnContract(
            name=column.name,
            dtype=TypeCheck(column.dtype, "block"),
            nulls=nulls,
            range=value_range,
            categories=categories,
            unique=unique,
        )
    freshness = None
    if max_age is not None:
        parse_age(max_age)
        timestamp = freshness_column or next((c.name for c in profile.columns.values() if c.kind == "datetime"), None)
        if timestamp is None:
            raise InvalidInput("max_age needs a datetime column (none found; name one with freshness_column)")
        freshness = FreshnessCheck(timestamp, max_age, "warn")
    rows = RowCountCheck(min_rows, max_rows, "warn") if min_rows is not None or max_rows is not None else None
    return Contract(columns=columns, rows=rows, freshness=freshness, name=name)


# --- the inline, one-row path ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One failed check on one request: the field it names, the check, its severity and what to fix."""

    column: str
    check: str
    severity: Severity
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"column": self.column, "check": self.check, "severity": self.severity, "message": self.message}


RowValidator = Callable[[Mapping[str, Any]], list[Violation]]
_MISSING = object()


def compile_row_validator(contract: Contract) -> RowValidator:
    """A function that checks one request (a mapping of field to value) in pure Python.

    Row-level checks only: presence and type, nulls (a null in a non-nullable field), range and
    categories. Null rates, uniqueness, row counts and freshness need a batch (`validate_batch`).
    Extra fields are ignored.

    >>> check = compile_row_validator(infer_contract(__import__("pandas").DataFrame({"x": [0.0, 1.0]})))
    >>> check({"x": 0.5}), [v.check for v in check({"x": "high"})]
    ([], ['dtype'])
    """
    checks = [_column_checker(column) for column in contract.columns.values()]

    def validate(row: Mapping[str, Any]) -> list[Violation]:
        found: list[Violation] = []
        for check in checks:
            check(row, found)
        return found

    return validate


def _column_checker(column: ColumnContract) -> Callable[[Mapping[str, Any], list[Violation]], None]:
    name = column.name
    type_severity = column.dtype.severity
    is_type = _TYPE_TESTS[column.dtype.type]
    expected = column.dtype.type
    nullable = column.nulls is None or column.nulls.max_rate > 0
    null_severity: Severity = column.nulls.severity if column.nulls is not None else "block"
    ranged = column.range is not None and column.dtype.type in ("integer", "float")
    low = column.range.low if column.range is not None else -math.inf
    high = column.range.high if column.range is not None else math.inf
    range_severity: Severity = column.range.severity if column.range is not None else "warn"
    allowed = frozenset(column.categories.allowed) if column.categories is not None else None
    category_severity: Severity = column.categories.severity if column.categories is not None else "warn"

    def check(row: Mapping[str, Any], found: list[Violation]) -> None:
        value = row.get(name, _MISSING)
        if value is _MISSING:
            found.append(Violation(name, "dtype", type_severity, f"{name}: required field is missing"))
            return
        if value is None or (value.__class__ is float and value != value):
            if not nullable:
                found.append(Violation(name, "nulls", null_severity, f"{name}: must not be null"))
            return
        if not is_type(value):
            found.append(
                Violation(name, "dtype", type_severity, f"{name}: expected {expected}, got {_describe(value)}")
            )
            return
        if ranged and not low <= value <= high:
            found.append(
                Violation(name, "range", range_severity, f"{name}: {value!r} is outside [{low:.6g}, {high:.6g}]")
            )
        if allowed is not None and str(value) not in allowed:
            found.append(
                Violation(name, "categories", category_severity, f"{name}: {_describe(value)} is not an allowed value")
            )

    return check


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _is_integer(value: Any) -> bool:
    cls = value.__class__
    return cls is int or (cls is float and value.is_integer()) or (isinstance(value, int) and cls is not bool)


def _is_float(value: Any) -> bool:
    cls = value.__class__
    return cls is float or cls is int or (isinstance(value, int | float) and cls is not bool)


def _is_datetime(value: Any) -> bool:
    if isinstance(value, datetime.date):
        return True
    if isinstance(value, str):
        try:
            datetime.datetime.fromisoformat(value)
        except ValueError:
            return False
        return True
    return False


_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "integer": _is_integer,
    "float": _is_float,
    "boolean": lambda value: value.__class__ is bool,
    "string": lambda value: isinstance(value, str),
    "datetime": _is_datetime,
}

__all__ = [
    "CategoryCheck",
    "ColumnContract",
    "Contract",
    "FreshnessCheck",
    "NullCheck",
    "RangeCheck",
    "RowCountCheck",
    "RowValidator",
    "Severity",
    "TypeCheck",
    "UniqueCheck",
    "Violation",
    "compile_row_validator",
    "infer_contract",
    "parse_age",
]
