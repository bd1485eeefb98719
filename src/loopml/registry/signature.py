"""Model signatures: the columns a model takes (name, dtype, nullability), what it returns, optional params.

`infer_signature` reads them off an input example and a prediction; `Signature.enforce` checks each predict
input against them and returns what the model should get. The check is built for 1-row requests: what only
depends on the input's columns and dtypes is worked out once and cached per signature, and a pandas
DataFrame, a numpy array or a list of dicts is checked as it is, without building a new DataFrame.

dtype compatibility (as MLflow): int -> float is upcast, float -> int is refused for DataFrame columns (a
column's dtype is the caller's statement); in a numpy array or in records, where a float is only how a number
is stored, whole-number floats are accepted in an integer column.

>>> sig = Signature((ColumnSpec("hr", "int64"), ColumnSpec("temp", "float64")))
>>> sig.enforce([{"hr": 3, "temp": 0.4}]).tolist()
[[3.0, 0.4]]
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMN_DTYPES",
    "ColumnSpec",
    "ExtraColumns",
    "OutputSpec",
    "ParamSpec",
    "Signature",
    "infer_signature",
]

ExtraColumns = Literal["drop", "error"]

_INTS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
COLUMN_DTYPES = ("bool", *_INTS, "float32", "float64", "string", "datetime")
_PARAM_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int64": (int,),
    "float64": (int, float),
    "string": (str,),
}
_MAX_PLANS = 256

# Kinds: "b" bool, "i" integer, "f" float, "s" string, "M" datetime; for an input also "O" (object: look at the
# values) and "x" (a dtype no signature column takes).
_FLOAT_TYPES: frozenset[type] = frozenset(
    {float, int, np.float64, np.float32, np.float16, *(np.dtype(t).type for t in _INTS)}
)
_INT_TYPES: frozenset[type] = frozenset({int, *(np.dtype(t).type for t in _INTS)})
_VALUE_TYPES: dict[str, frozenset[type]] = {
    "f": _FLOAT_TYPES,
    "i": _INT_TYPES,
    "b": frozenset({bool, np.bool_}),
    "s": frozenset({str, np.str_}),
    "M": frozenset({dt.datetime, dt.date, np.datetime64}),
}


def _kind_of_spec(dtype: str) -> str:
    if dtype == "bool":
        return "b"
    if dtype in _INTS:
        return "i"
    if dtype.startswith("float"):
        return "f"
    return "s" if dtype == "string" else "M"


@dataclass(frozen=True)
class ColumnSpec:
    """One input column: its name, dtype (one of `COLUMN_DTYPES`) and whether it may hold nulls."""

    name: str
    dtype: str
    nullable: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput(f"a signature column name must be a non-empty string, got {self.name!r}")
        if self.dtype not in COLUMN_DTYPES:
            raise InvalidInput(f"column {self.name!r}: unknown dtype {self.dtype!r}; use one of {COLUMN_DTYPES}")
        if not isinstance(self.nullable, bool):
            raise InvalidInput(f"column {self.name!r}: nullable must be true or false")


@dataclass(frozen=True)
class OutputSpec:
    """What predict returns: a numpy dtype name ("float64", "int64", "string"...) and a shape, -1 = any size."""

    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ParamSpec:
    """An optional inference parameter with its type ("bool", "int64", "float64", "string") and default."""

    name: str
    dtype: str
    default: bool | int | float | str | None

    def __post_init__(self) -> None:
        if self.dtype not in _PARAM_TYPES:
            raise InvalidInput(f"param {self.name!r}: unknown dtype {self.dtype!r}; use one of {tuple(_PARAM_TYPES)}")
        allowed = _PARAM_TYPES[self.dtype]
        if self.default is not None and (
            not isinstance(self.default, allowed) or (isinstance(self.default, bool) and bool not in allowed)
        ):
            raise InvalidInput(f"param {self.name!r}: default {self.default!r} is not a {self.dtype}")


@dataclass(frozen=True)
class _FramePlan:
    select: list[str] | None  # columns to take, in signature order; None when already exact
    casts: dict[str, str]  # int columns upcast to float
    null_positions: list[int]  # positions of non-nullable columns whose dtype can hold nulls
    null_names: list[str]
    numeric: bool  # every column a numpy int/float dtype: `to_numpy()` is a cheap float matrix
    string_positions: list[int]  # object columns that must hold strings, checked per call
    dtypes: tuple[Any, ...]  # keeps the dtype objects of the cache key alive, so their ids stay theirs


@dataclass(frozen=True)
class _ArrayPlan:
    null_positions: list[int]
    whole_positions: list[int]  # integer columns of a float array: values must be whole numbers
    object_kinds: list[str] | None  # an object array: checked value by value


@dataclass(frozen=True)
class Signature:
    """The inputs, outputs and params of a model; `enforce` checks a predict input against it."""

    inputs: tuple[ColumnSpec, ...]
    outputs: OutputSpec | None = None
    params: tuple[ParamSpec, ...] | None = None
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _kinds: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _records_dtype: str | None = field(init=False, repr=False, compare=False)
    _plans: dict[Any, Any] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        names = tuple(c.name for c in self.inputs)
        if not names:
            raise InvalidInput("a signature needs at least one input column")
        if len(set(names)) != len(names):
            raise InvalidInput(f"duplicate column names in signature: {sorted(n for n in names if names.count(n) > 1)}")
        kinds = tuple(_kind_of_spec(c.dtype) for c in self.inputs)
        object.__setattr__(self, "_names", names)
        object.__setattr__(self, "_kinds", kinds)
        object.__setattr__(self, "_records_dtype", _records_dtype(self.inputs, kinds))

    @property
    def column_names(self) -> tuple[str, ...]:
        return self._names

    # --- JSON --------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [{"name": c.name, "dtype": c.dtype, "nullable": c.nullable} for c in self.inputs],
            "outputs": None
            if self.outputs is None
            else {"dtype": self.outputs.dtype, "shape": list(self.outputs.shape)},
            "params": None
            if self.params is None
            else [{"name": p.name, "dtype": p.dtype, "default": p.default} for p in self.params],
        }

    @classmethod
    def from_dict(cls, data: object) -> Signature:
        """Read `to_dict` output back, strictly: any other shape is `InvalidInput`."""
        obj = _mapping(data, "signature", {"inputs", "outputs", "params"})
        inputs = []
        for i, item in enumerate(_list(obj["inputs"], "signature.inputs")):
            col = _mapping(item, f"signature.inputs[{i}]", {"name", "dtype", "nullable"})
            inputs.append(ColumnSpec(_str(col["name"], "name"), _str(col["dtype"], "dtype"), col["nullable"]))
        outputs = None
        if obj["outputs"] is not None:
            out = _mapping(obj["outputs"], "signature.outputs", {"dtype", "shape"})
            shape = _list(out["shape"], "signature.outputs.shape")
            if not all(type(n) is int and n >= -1 for n in shape):
                raise InvalidInput("signature.outputs.shape must be a list of integers (-1 for any size)")
            outputs = OutputSpec(_str(out["dtype"], "signature.outputs.dtype"), tuple(shape))
        params = None
        if obj["params"] is not None:
            params = []
            for i, item in enumerate(_list(obj["params"], "signature.params")):
                par = _mapping(item, f"signature.params[{i}]", {"name", "dtype", "default"})
                params.append(ParamSpec(_str(par["name"], "name"), _str(par["dtype"], "dtype"), par["default"]))
        return cls(tuple(inputs), outputs, None if params is None else tuple(params))

    # --- enforcement ---------------------------------------------------------------------------------------

    def enforce(self, data: object, extra_columns: ExtraColumns = "drop") -> Any:
        """Check `data` against the inputs; return what the model's predict gets.

        A DataFrame comes back with the signature's columns in order (extra columns dropped, or refused with
        `extra_columns="error"`); a 2-D numpy array comes back unchanged; a list of dicts (or one dict) becomes
        a 2-D numpy array in column order when every input is numeric or bool, else a DataFrame.
        """
        if extra_columns != "drop" and extra_columns != "error":
            raise InvalidInput(f"extra_columns must be 'drop' or 'error', got {extra_columns!r}")
        pd = sys.modules.get("pandas")
        if pd is not None and isinstance(data, pd.DataFrame):
            return self._enforce_frame(data, extra_columns)
        if isinstance(data, np.ndarray):
            return self._enforce_array(data)
        if isinstance(data, dict):
            return self._enforce_records([data], extra_columns)
        if isinstance(data, list) and data and all(isinstance(row, dict) for row in data):
            return self._enforce_records(data, extra_columns)
        raise InvalidInput(
            "predict input must be a pandas DataFrame, a 2-D numpy array, a list of dicts or a dict, "
            f"got {type(data).__name__}" + (" (empty)" if isinstance(data, list) and not data else "")
        )

    def enforce_params(self, params: Mapping[str, object] | None) -> dict[str, object] | None:
        """The params to pass to the model: defaults filled in, unknown names and wrong types refused."""
        if self.params is None:
            if params:
                raise InvalidInput(f"this model takes no params (got {sorted(params)})")
            return None
        result: dict[str, object] = {p.name: p.default for p in self.params}
        specs = {p.name: p for p in self.params}
        for name, value in (params or {}).items():
            spec = specs.get(name)
            if spec is None:
                raise InvalidInput(f"unknown param {name!r}; this model takes {sorted(specs)}")
            allowed = _PARAM_TYPES[spec.dtype]
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                raise InvalidInput(f"param {name!r}: expected {spec.dtype}, got {type(value).__name__} {value!r}")
            result[name] = value
        return result

    def _enforce_frame(self, frame: pd.DataFrame, extra_columns: ExtraColumns) -> pd.DataFrame:
        columns = _column_names(frame)
        dtypes = _frame_dtypes(frame)
        # dtype objects are keyed by id (hashing 11 numpy dtypes costs ~20 us); the plan keeps them alive
        key = (extra_columns, tuple(columns), tuple(map(id, dtypes)))
        plan: _FramePlan | None = self._plans.get(key)
        if plan is None:
            plan = self._plan_frame(frame, columns, dtypes, extra_columns)
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        if plan.null_positions:
            if plan.numeric:
                has_null = _float_nulls(frame, plan.null_positions)
            else:
                has_null = frame.isna().to_numpy()[:, plan.null_positions].any(axis=0)
            if has_null.any():
                name = plan.null_names[int(np.argmax(has_null))]
                raise InvalidInput(f"column {name!r}: null value (NaN/None) in a column the model requires")
        for position in plan.string_positions:
            _check_strings(frame.iloc[:, position], columns[position])
        if plan.select is not None:
            frame = frame[plan.select]
        if plan.casts:
            frame = frame.astype(plan.casts)
        return frame

    def _plan_frame(
        self, frame: pd.DataFrame, columns: list[Any], dtypes: list[Any], extra_columns: ExtraColumns
    ) -> _FramePlan:
        position = {name: i for i, name in enumerate(columns)}
        if len(position) != len(columns):
            raise InvalidInput(
                f"duplicate column names in the input: {sorted({c for c in columns if columns.count(c) > 1}, key=str)}"
            )
        for name in self._names:
            if name not in position:
                raise InvalidInput(f"missing column {name!r}")
        extra = [c for c in columns if c not in set(self._names)]
        if extra and extra_columns == "error":
            raise InvalidInput(_extra_message(extra[0]))
        casts: dict[str, str] = {}
        null_positions, null_names, string_positions = [], [], []
        for spec, kind in zip(self.inputs, self._kinds, strict=True):
            i = position[spec.name]
            got = _kind_of_dtype(dtypes[i])
            if got == "O" and kind == "s":
                string_positions.append(i)
            elif got != kind and not (got == "i" and kind == "f"):
                raise InvalidInput(_dtype_message(spec, dtypes[i], frame.iloc[:, i]))
            if got == "i" and kind == "f":
                casts[spec.name] = spec.dtype
            if not spec.nullable and _can_hold_null(dtypes[i]):
                null_positions.append(i)
                null_names.append(spec.name)
        numeric = all(isinstance(d, np.dtype) and d.kind in "iuf" for d in dtypes)
        select = None if tuple(columns) == self._names else list(self._names)
        return _FramePlan(select, casts, null_positions, null_names, numeric, string_positions, tuple(dtypes))

    def _enforce_array(self, array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if array.ndim != 2 or array.shape[1] != len(self._names):
            raise InvalidInput(f"expected a 2-D array of shape (n, {len(self._names)}), got shape {array.shape}")
        plan: _ArrayPlan | None = self._plans.get(array.dtype)
        if plan is None:
            plan = self._plan_array(array.dtype)
            self._plans[array.dtype] = plan
        if plan.object_kinds is not None:
            for row in array:
                self._check_row(list(row))
            return array
        if plan.null_positions:
            has_null = np.isnan(array[:, plan.null_positions]).any(axis=0)
            if has_null.any():
                name = self._names[plan.null_positions[int(np.argmax(has_null))]]
                raise InvalidInput(f"column {name!r}: null value (NaN) in a column the model requires")
        if plan.whole_positions:
            values = array[:, plan.whole_positions]
            bad = np.isinf(values) | (np.isfinite(values) & (values != np.floor(values)))
            if bad.any():
                column = int(np.argmax(bad.any(axis=0)))
                spec = self.inputs[plan.whole_positions[column]]
                sample = values[:, column][bad[:, column]][0]
                raise InvalidInput(
                    f"column {spec.name!r}: expected {spec.dtype}, got the non-integer value {_sample(sample)}"
                )
        return array

    def _plan_array(self, dtype: np.dtype[Any]) -> _ArrayPlan:
        got = _kind_of_dtype(dtype)
        if got == "O":
            return _ArrayPlan([], [], list(self._kinds))
        null_positions, whole_positions = [], []
        for i, (spec, kind) in enumerate(zip(self.inputs, self._kinds, strict=True)):
            if got == "f" and kind == "i":
                whole_positions.append(i)
            elif got != kind and not (got == "i" and kind == "f"):
                raise InvalidInput(f"column {spec.name!r} (array column {i}): expected {spec.dtype}, got {dtype}")
            if got == "f" and not spec.nullable:
                null_positions.append(i)
        return _ArrayPlan(null_positions, whole_positions, None)

    def _enforce_records(self, rows: list[dict[str, Any]], extra_columns: ExtraColumns) -> Any:
        names = self._names
        table = []
        for row in rows:
            try:
                values = [row[name] for name in names]
            except KeyError:
                missing = next(n for n in names if n not in row)
                raise InvalidInput(f"missing column {missing!r}") from None
            if len(row) != len(names) and extra_columns == "error":
                raise InvalidInput(_extra_message(next(k for k in row if k not in set(names))))
            self._check_row(values)
            table.append(values)
        if self._records_dtype is not None:
            return np.array(table, dtype=self._records_dtype)
        import pandas as pd

        frame = pd.DataFrame(table, columns=list(names))
        for spec, kind in zip(self.inputs, self._kinds, strict=True):
            if kind == "M":
                frame[spec.name] = pd.to_datetime(frame[spec.name])
        return frame

    def _check_row(self, values: list[Any]) -> None:
        for value, spec, kind in zip(values, self.inputs, self._kinds, strict=True):
            kind_ok = type(value) in _VALUE_TYPES[kind]
            if kind_ok and not (kind == "f" and math.isnan(value)):
                continue
            if _is_null(value):
                if spec.nullable:
                    continue
                raise InvalidInput(f"column {spec.name!r}: null value (NaN/None) in a column the model requires")
            if kind == "i" and isinstance(value, float | np.floating) and float(value).is_integer():
                continue
            if kind == "M" and isinstance(value, str) and _is_iso_datetime(value):
                continue
            if kind == "M" and isinstance(value, dt.datetime | dt.date | np.datetime64):
                continue
            raise InvalidInput(
                f"column {spec.name!r}: expected {spec.dtype}, got {type(value).__name__} {_sample(value)}"
            )


# --- inference -------------------------------------------------------------------------------------------


def infer_signature(
    input_example: object, prediction: object = None, params: Mapping[str, object] | None = None
) -> Signature:
    """Read a signature off an input example (DataFrame, 2-D array, list of dicts or dict) and a prediction.

    A column is nullable when the example holds a null in it; pass `signature=` to `save_model` to say more.
    """
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(input_example, pd.DataFrame):
        inputs = tuple(_infer_frame_column(name, input_example[name]) for name in input_example.columns)
    elif isinstance(input_example, np.ndarray):
        inputs = _infer_array(input_example)
    elif isinstance(input_example, dict) or (
        isinstance(input_example, list) and input_example and all(isinstance(r, dict) for r in input_example)
    ):
        inputs = _infer_records([input_example] if isinstance(input_example, dict) else input_example)
    else:
        raise InvalidInput(
            "input_example must be a pandas DataFrame, a 2-D numpy array, a list of dicts or a dict, "
            f"got {type(input_example).__name__}"
        )
    outputs = None if prediction is None else _infer_output(prediction)
    param_specs = None
    if params is not None:
        param_specs = tuple(_infer_param(name, value) for name, value in params.items())
    return Signature(inputs, outputs, param_specs)


def _infer_frame_column(name: object, column: pd.Series[Any]) -> ColumnSpec:
    if not isinstance(name, str):
        raise InvalidInput(f"column names must be strings to build a signature, got {name!r}")
    dtype = column.dtype
    kind = _kind_of_dtype(dtype)
    nullable = bool(column.isna().any())
    if kind == "O":
        import pandas as pd

        inferred = pd.api.types.infer_dtype(column, skipna=True)
        mapped = {"string": "string", "empty": "string", "boolean": "bool", "integer": "int64", "floating": "float64"}
        mapped |= {
            "mixed-integer-float": "float64",
            "datetime": "datetime",
            "datetime64": "datetime",
            "date": "datetime",
        }
        if inferred not in mapped:
            raise InvalidInput(
                f"column {name!r} holds values of mixed or unsupported types ({inferred}); "
                "cast it to one type or pass signature= explicitly"
            )
        return ColumnSpec(name, mapped[inferred], nullable)
    if kind == "x":
        raise InvalidInput(f"column {name!r}: dtype {dtype} is not supported in a signature (use {COLUMN_DTYPES})")
    return ColumnSpec(name, _spec_dtype(kind, dtype), nullable)


def _infer_array(array: np.ndarray[Any, Any]) -> tuple[ColumnSpec, ...]:
    if array.ndim != 2:
        raise InvalidInput(f"an array input example must be 2-D (rows, columns), got shape {array.shape}")
    kind = _kind_of_dtype(array.dtype)
    if kind in "Ox":
        raise InvalidInput(f"array dtype {array.dtype} is not supported in a signature; use a DataFrame")
    nulls = np.isnan(array).any(axis=0) if kind == "f" else np.zeros(array.shape[1], dtype=bool)
    dtype = _spec_dtype(kind, array.dtype)
    return tuple(ColumnSpec(str(i), dtype, bool(nulls[i])) for i in range(array.shape[1]))


def _infer_records(rows: Sequence[dict[str, Any]]) -> tuple[ColumnSpec, ...]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    specs = []
    for name in names:
        values = [row.get(name) for row in rows]
        present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if not isinstance(name, str):
            raise InvalidInput(f"column names must be strings to build a signature, got {name!r}")
        if not present:
            raise InvalidInput(f"cannot infer the dtype of column {name!r}: every value in the example is null")
        types = {type(v) for v in present}
        if types <= _VALUE_TYPES["b"]:
            dtype = "bool"
        elif types <= _INT_TYPES:
            dtype = "int64"
        elif types <= _FLOAT_TYPES:
            dtype = "float64"
        elif types <= _VALUE_TYPES["s"]:
            dtype = "string"
        elif all(isinstance(v, dt.date | np.datetime64) for v in present):
            dtype = "datetime"
        else:
            found = sorted(t.__name__ for t in types)
            raise InvalidInput(f"column {name!r} holds values of mixed or unsupported types ({', '.join(found)})")
        specs.append(ColumnSpec(name, dtype, len(present) < len(values)))
    return tuple(specs)


def _infer_output(prediction: object) -> OutputSpec:
    array = np.asarray(prediction)
    kind = array.dtype.kind
    dtype = "string" if kind in "OUS" else "bool" if kind == "b" else str(array.dtype)
    return OutputSpec(dtype, (-1, *array.shape[1:]))


def _infer_param(name: str, value: object) -> ParamSpec:
    for dtype, types in (("bool", (bool,)), ("int64", (int,)), ("float64", (float,)), ("string", (str,))):
        if isinstance(value, types):
            return ParamSpec(name, dtype, value)
    raise InvalidInput(f"param {name!r}: default must be a bool, int, float or str, got {type(value).__name__}")


# --- helpers ---------------------------------------------------------------------------------------------


def _records_dtype(inputs: tuple[ColumnSpec, ...], kinds: tuple[str, ...]) -> str | None:
    """The dtype of the array records become, or None when they need a DataFrame (strings, datetimes)."""
    if any(k in "sM" for k in kinds):
        return None
    if any(k == "f" for k in kinds) or any(c.nullable and k == "i" for c, k in zip(inputs, kinds, strict=True)):
        return "float64"
    if any(k == "i" for k in kinds):
        return "int64"
    return "float64" if any(c.nullable for c in inputs) else "bool"


def _kind_of_dtype(dtype: Any) -> str:
    if isinstance(dtype, np.dtype):
        return {"b": "b", "i": "i", "u": "i", "f": "f", "M": "M", "O": "O", "U": "s", "S": "s"}.get(dtype.kind, "x")
    import pandas as pd

    types = pd.api.types
    if types.is_string_dtype(dtype):
        return "s"
    if types.is_datetime64_any_dtype(dtype):
        return "M"
    if types.is_bool_dtype(dtype):
        return "b"
    if types.is_integer_dtype(dtype):
        return "i"
    return "f" if types.is_float_dtype(dtype) else "x"


def _spec_dtype(kind: str, dtype: Any) -> str:
    if kind in "if":
        name = str(np.dtype(dtype.numpy_dtype if hasattr(dtype, "numpy_dtype") else dtype))
        return name if name in COLUMN_DTYPES else ("float64" if kind == "f" else "int64")
    return {"b": "bool", "s": "string", "M": "datetime"}[kind]


def _frame_dtypes(frame: pd.DataFrame) -> list[Any]:
    """The frame's column dtypes, in order. `frame.dtypes` builds a Series (~20 us, over the 1-row budget);
    pandas' block manager holds the same list, so use it when present and fall back to the public API.
    """
    get_dtypes = getattr(getattr(frame, "_mgr", None), "get_dtypes", None)
    if get_dtypes is not None:
        return list(get_dtypes())
    return frame.dtypes.tolist()


def _column_names(frame: pd.DataFrame) -> list[Any]:
    """The frame's column names. pandas 3 keeps string column names in Arrow, where `columns.tolist()` goes
    through numpy (~15 us for 11 names); reading the Arrow array directly costs a third of that."""
    arrow = getattr(getattr(frame.columns, "_values", None), "_pa_array", None)
    if arrow is not None:
        try:
            return list(arrow.to_pylist())
        except AttributeError:  # not the Arrow array this was written against: the public way below
            pass
    return list(frame.columns.tolist())


def _float_nulls(frame: pd.DataFrame, positions: list[int]) -> Any:
    """For each column at `positions` (all numpy int/float), whether it holds a NaN. The block manager keeps
    the float columns together as 2-D arrays: checking those avoids `to_numpy()` interleaving every column
    into a new float matrix (~10-20 us for a 1-row frame); the public way is the fallback."""
    blocks = getattr(getattr(frame, "_mgr", None), "blocks", None)
    if blocks is not None:
        try:
            found = np.zeros(frame.shape[1], dtype=bool)
            for block in blocks:
                if block.dtype.kind == "f":
                    found[block.mgr_locs.as_array] = np.isnan(block.values).any(axis=1)
            return found[positions]
        except (AttributeError, ValueError, IndexError):
            pass
    return np.asarray(np.isnan(frame.to_numpy()[:, positions]).any(axis=0))


def _can_hold_null(dtype: Any) -> bool:
    return not (isinstance(dtype, np.dtype) and dtype.kind in "iub")


def _check_strings(column: pd.Series[Any], name: str) -> None:
    import pandas as pd

    if pd.api.types.infer_dtype(column, skipna=True) not in ("string", "empty"):
        bad = next(v for v in column if not isinstance(v, str) and not pd.isna(v))
        raise InvalidInput(f"column {name!r}: expected string, got {type(bad).__name__} {_sample(bad)}")


def _dtype_message(spec: ColumnSpec, dtype: Any, column: pd.Series[Any]) -> str:
    message = f"column {spec.name!r}: expected {spec.dtype}, got {dtype}"
    if _kind_of_dtype(dtype) in "Os":
        sample = next((v for v in column if isinstance(v, str) or not _is_null(v)), None)
        if isinstance(sample, str):
            return f"{message} (strings such as {sample!r})"
        if sample is not None:
            return f"{message} (values of type {type(sample).__name__} such as {sample!r})"
    if _kind_of_dtype(dtype) == "f" and spec.dtype in _INTS:
        return f"{message} (a float column is not converted to integers; cast it if the values are whole numbers)"
    return message


def _extra_message(name: object) -> str:
    return f"unexpected column {name!r} (the model was trained without it; pass extra_columns='drop' to ignore it)"


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, float | np.floating) and math.isnan(value))


def _sample(value: object) -> str:
    text = repr(value.item() if isinstance(value, np.generic) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_iso_datetime(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _mapping(data: object, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput(f"{where} must be an object, got {type(data).__name__}")
    missing, unknown = sorted(keys - set(data)), sorted(set(data) - keys, key=str)
    if missing:
        raise InvalidInput(f"{where}: missing field {missing[0]!r}")
    if unknown:
        raise InvalidInput(f"{where}: unknown field {unknown[0]!r}")
    return data


def _list(data: object, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidInput(f"{where} must be a list, got {type(data).__name__}")
    return data


def _str(data: object, where: str) -> str:
    if not isinstance(data, str):
        raise InvalidInput(f"{where} must be a string, got {type(data).__name__}")
    return data
