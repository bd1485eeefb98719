"""The one canonical model input every protocol parses into, and its check against the model signature.

`ModelInput` holds columns (name -> values) in signature order and the row count. Each protocol turns its body
into one with `from_records`, `from_columns` or `from_rows`; `InputConverter.to_matrix` then checks every value
against the signature (type, nulls) and builds what the model gets: a 2-D numpy array when every input is
numeric or bool, else a DataFrame. Every refusal is an `InvalidInput` whose message names the field.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import orjson

from loopml.errors import InvalidInput, InvalidJson
from loopml.registry import Signature

__all__ = ["InputConverter", "ModelInput", "from_columns", "from_records", "from_rows", "load_json"]

_NONE = type(None)
_INT_TYPES: frozenset[type] = frozenset({int})
_FLOAT_TYPES: frozenset[type] = frozenset({int, float})
_BOOL_TYPES: frozenset[type] = frozenset({bool})
_STR_TYPES: frozenset[type] = frozenset({str})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_TWO_TO_63 = 2.0**63


# an integer literal of 19 digits or more (int64's largest has 19): perhaps past 64 bits
_LONG_INTEGER = re.compile(rb"(?<![.\deE+-])-?\d{19,}(?![.\deE])")
# 19 digits in a row, anywhere: a scan 4x cheaper than the one above, which runs only when this one hits
_NINETEEN_DIGITS = re.compile(rb"\d{19}")


def load_json(body: bytes) -> object:
    """A request body parsed as JSON, with integers exact.

    orjson gives an integer literal past 64 bits as a float (2**64 + 1 as 1.8446744073709552e19, -2**63 - 1 as
    -2**63 exactly), which would pass a range check it should fail. A body holding a literal that long (rare:
    a scan of the bytes, a microsecond) is parsed again with the standard library, whose integers are exact.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None
    if _NINETEEN_DIGITS.search(body) is None or _LONG_INTEGER.search(body) is None:
        return data
    try:
        return json.loads(body)
    except ValueError as exc:  # Python refuses integers of more than 4300 digits
        raise InvalidInput(f"the body holds a number that cannot be read: {exc}") from None


@dataclass(frozen=True)
class ModelInput:
    """Columns (name -> one value per row) in signature order, and the number of rows (at least 1)."""

    columns: dict[str, list[Any]]
    rows: int


def from_records(
    records: object, names: Sequence[str], *, where: str, drop_unknown: bool = False, ignore: str | None = None
) -> ModelInput:
    """Rows as objects (`[{"temp": 0.3, ...}, ...]`). Unknown fields are refused unless `drop_unknown`;
    `ignore` names one extra field that is allowed (the deployment's sticky key)."""
    if not isinstance(records, list):
        raise InvalidInput(f"{where} must be a list of objects, got {_type(records)}")
    if not records:
        raise InvalidInput(f"{where} is empty: send at least one row")
    columns: dict[str, list[Any]] = {name: [] for name in names}
    width = len(names)
    appenders = [(name, columns[name].append) for name in names]
    for i, row in enumerate(records):
        if not isinstance(row, dict):
            raise InvalidInput(f"{where}[{i}] must be an object, got {_type(row)}")
        try:
            for name, append in appenders:
                append(row[name])
        except KeyError:
            missing = next(n for n in names if n not in row)
            raise InvalidInput(f"{where}[{i}]: missing field {missing!r}") from None
        if len(row) != width and not drop_unknown:
            _check_unknown(row, names, f"{where}[{i}]", ignore)
    return ModelInput(columns, len(records))


def from_columns(
    data: object, names: Sequence[str], *, where: str, drop_unknown: bool = False, ignore: str | None = None
) -> ModelInput:
    """Columns as an object of equal-length lists (`{"temp": [0.3, 0.4], ...}`)."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{where} must be an object of columns, got {_type(data)}")
    columns: dict[str, list[Any]] = {}
    rows = -1
    for name in names:
        values = data.get(name, _MISSING)
        if values is _MISSING:
            raise InvalidInput(f"{where}: missing field {name!r}")
        if not isinstance(values, list):
            raise InvalidInput(f"{where}.{name} must be a list of values, got {_type(values)}")
        if rows == -1:
            rows = len(values)
        elif len(values) != rows:
            raise InvalidInput(
                f"{where}.{name} has {len(values)} values but {names[0]!r} has {rows}: columns must be equally long"
            )
        columns[name] = values
    if len(data) != len(names) and not drop_unknown:
        _check_unknown(data, names, where, ignore)
    if rows == 0:
        raise InvalidInput(f"{where} is empty: send at least one row")
    return ModelInput(columns, rows)


def from_rows(
    rows: object,
    names: Sequence[str],
    *,
    where: str,
    header: Sequence[object] | None = None,
    drop_unknown: bool = False,
    ignore: str | None = None,
) -> ModelInput:
    """Rows as lists; in signature order, or in the order of `header` (column names) when given."""
    if not isinstance(rows, list):
        raise InvalidInput(f"{where} must be a list of rows, got {_type(rows)}")
    if not rows:
        raise InvalidInput(f"{where} is empty: send at least one row")
    if header is None:
        positions = list(range(len(names)))
        width = len(names)
    else:
        index: dict[object, int] = {}
        for i, name in enumerate(header):
            if not isinstance(name, str):
                raise InvalidInput(f"column names must be strings, got {_type(name)} {name!r}")
            if name in index:
                raise InvalidInput(f"column {name!r} is given twice")
            index[name] = i
        missing = [n for n in names if n not in index]
        if missing:
            raise InvalidInput(f"missing field {missing[0]!r}")
        if not drop_unknown:
            _check_unknown(index, names, "columns", ignore)
        positions = [index[n] for n in names]
        width = len(header)
    columns: list[list[Any]] = [[] for _ in names]
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else _type(row)
            raise InvalidInput(f"{where}[{i}] must be a list of {width} values (one per column), got {got}")
        for column, position in zip(columns, positions, strict=True):
            column.append(row[position])
    return ModelInput(dict(zip(names, columns, strict=True)), len(rows))


class InputConverter:
    """Checks a `ModelInput` against one signature and builds the model's input from it."""

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self.names: tuple[str, ...] = signature.column_names
        specs = []
        for column in signature.inputs:
            dtype = column.dtype
            if dtype == "bool":
                kind = "b"
            elif dtype.startswith("float"):
                kind = "f"
            elif dtype in ("string", "datetime"):
                kind = "s" if dtype == "string" else "M"
            else:
                kind = "i"
            specs.append((column.name, kind, column.nullable, dtype))
        self._specs = tuple(specs)
        allowed = {"f": _FLOAT_TYPES, "i": _INT_TYPES, "b": _BOOL_TYPES}
        self._groups = tuple(
            (allowed[kind], [name for name, k, _, _ in specs if k == kind])
            for kind in ("f", "i", "b")
            if any(k == kind for _, k, _, _ in specs)
        )
        kinds = {kind for _, kind, _, _ in specs}
        self.numeric = kinds <= {"b", "i", "f"}
        nullable_int = any(kind in "ib" and nullable for _, kind, nullable, _ in specs)
        self.dtype = np.float64 if "f" in kinds or nullable_int else np.int64 if "i" in kinds else np.bool_

    def to_matrix(self, data: ModelInput) -> Any:
        """The checked model input: an (n, k) numpy array, or a DataFrame when a column is a string/datetime."""
        columns = data.columns
        if self.numeric and all(
            set(map(type, chain.from_iterable([columns[name] for name in names]))) <= allowed
            for allowed, names in self._groups
        ):
            # every value has its column's type: only the 64-bit range is left to check
            return np.ascontiguousarray(self._numeric_matrix(columns).T)
        for name, kind, nullable, dtype in self._specs:
            values = columns[name]
            types = set(map(type, values))
            if kind == "f":
                if types <= _FLOAT_TYPES:
                    continue
            elif kind == "i":
                if types <= _INT_TYPES:
                    continue
            elif kind == "b":
                if types <= _BOOL_TYPES:
                    continue
            elif types <= _STR_TYPES and (kind == "s" or all(map(_is_iso_datetime, values))):
                continue
            self._check_values(name, kind, nullable, dtype, values)
        if self.numeric:
            return np.ascontiguousarray(self._numeric_matrix(columns).T)
        self._check_int64(columns)
        import pandas as pd

        frame = pd.DataFrame({name: columns[name] for name in self.names})
        for name, kind, _, _ in self._specs:
            if kind == "M":
                frame[name] = pd.to_datetime(frame[name])
        return frame

    def _numeric_matrix(self, columns: dict[str, list[Any]]) -> np.ndarray[Any, Any]:
        """The (k, n) matrix of checked numeric columns; an integer outside int64 is refused, not cast (numpy
        would raise for an int64 matrix, and silently round or overflow for a float64 one)."""
        try:
            matrix: np.ndarray[Any, Any] = np.array([columns[name] for name in self.names], dtype=self.dtype)
        except OverflowError:
            self._check_int64(columns)
            raise
        if self.dtype is np.float64 and (np.abs(matrix) >= _TWO_TO_63).any():  # NaN (a null) compares False
            self._check_int64(columns)
        return matrix

    def _check_int64(self, columns: dict[str, list[Any]]) -> None:
        """Refuse a JSON integer outside the 64-bit signed range, in any numeric column."""
        for name, kind, _, dtype in self._specs:
            if kind not in "if":
                continue
            for row, value in enumerate(columns[name]):
                if type(value) is int and not _INT64_MIN <= value <= _INT64_MAX:
                    raise InvalidInput(
                        f"field {name!r}: the integer {value} in row {row} is outside the 64-bit range "
                        f"[{_INT64_MIN}, {_INT64_MAX}] ({dtype})"
                    )

    @staticmethod
    def _check_values(name: str, kind: str, nullable: bool, dtype: str, values: list[Any]) -> None:
        allowed = {"f": _FLOAT_TYPES, "i": _INT_TYPES, "b": _BOOL_TYPES}.get(kind, _STR_TYPES)
        for row, value in enumerate(values):
            if type(value) in allowed and (kind != "M" or _is_iso_datetime(value)):
                continue
            if value is None:
                if nullable:
                    continue
                raise InvalidInput(f"field {name!r}: null in row {row}, but the model requires a value ({dtype})")
            if kind == "i" and type(value) is float and value.is_integer():
                if -_TWO_TO_63 <= value < _TWO_TO_63:
                    continue
                raise InvalidInput(
                    f"field {name!r}: {value!r} in row {row} is outside the 64-bit integer range "
                    f"[{_INT64_MIN}, {_INT64_MAX}] ({dtype})"
                )
            if kind == "M" and isinstance(value, dt.date):
                continue
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            what = "a non-integer number" if kind == "i" and type(value) is float else _type(value)
            raise InvalidInput(f"field {name!r}: expected {dtype}, got {what} {shown} in row {row}")


def _check_unknown(data: dict[Any, Any], names: Sequence[str], where: str, ignore: str | None) -> None:
    known = set(names)
    for key in data:
        if key not in known and key != ignore:
            raise InvalidInput(f"{where}: unknown field {key!r} (the model takes {', '.join(names)})")


def _is_iso_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _type(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), f"a {type(value).__name__}"
    )


_MISSING: Any = object()
