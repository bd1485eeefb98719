"""Reading a frame, an Arrow table or a file one column at a time, as Arrow arrays.

Everything downstream (profiles, batch checks, drift) sees one shape: a `Column` holding a pyarrow
ChunkedArray and its logical type. A Parquet file is read column by column, so the peak memory of a
profile is about one column, not the whole table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from loopml.errors import InvalidInput

LogicalType = Literal["integer", "float", "boolean", "string", "datetime"]
Kind = Literal["numeric", "categorical", "datetime"]
KIND: dict[str, Kind] = {
    "integer": "numeric",
    "float": "numeric",
    "boolean": "categorical",
    "string": "categorical",
    "datetime": "datetime",
}

Source: TypeAlias = pd.DataFrame | pa.Table | str | Path
"""What profiles, checks and drift accept: a pandas frame, a pyarrow Table, or a .csv / .parquet path."""


def logical_type(arrow_type: pa.DataType) -> LogicalType:
    if pa.types.is_dictionary(arrow_type):
        return logical_type(arrow_type.value_type)
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "datetime"
    return "string"


@dataclass(frozen=True)
class Column:
    """One column as Arrow data. `numbers()` and `counts()` are the two views the statistics need."""

    name: str
    data: pa.ChunkedArray

    @property
    def logical(self) -> LogicalType:
        return logical_type(self.data.type)

    @property
    def kind(self) -> Kind:
        return KIND[self.logical]

    @property
    def physical(self) -> str:
        return str(self.data.type)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def null_count(self) -> int:
        """Nulls, counting NaN in float columns as null (a float NaN is how pandas writes a missing value)."""
        nulls = int(self.data.null_count)
        if self.logical == "float" and not pa.types.is_decimal(self.data.type):
            nulls += int(pc.sum(pc.is_nan(self.data)).as_py() or 0)
        return nulls

    def numbers(self) -> NDArray[np.float64]:
        """float64 values with NaN for nulls; datetimes as seconds since the epoch (UTC)."""
        data = self.data
        if pa.types.is_dictionary(data.type):
            data = data.cast(data.type.value_type)
        if self.logical == "datetime":
            if pa.types.is_date(data.type):
                data = data.cast(pa.timestamp("s"))
            unit = data.type.unit
            seconds = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]
            ints = pc.fill_null(data.cast(pa.timestamp(unit, tz=None), safe=False).cast(pa.int64()), 0)
            values = np.asarray(ints.to_numpy(), dtype=np.float64) / seconds
            if data.null_count:
                values[np.asarray(data.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = np.nan
            return values
        if self.kind != "numeric":
            raise TypeError(f"column {self.name!r} is {self.logical}, not numeric")
        if data.type != pa.float64():
            data = data.cast(pa.float64())
        if data.null_count:
            data = pc.fill_null(data, np.nan)
        return np.asarray(data.to_numpy(), dtype=np.float64)

    def counts(self) -> dict[str, int]:
        """Non-null value counts keyed by the value's text, most frequent first (ties by value)."""
        data = self.data
        if self.logical == "float":
            data = pc.filter(data, pc.invert(pc.is_nan(data)))
        found = pc.value_counts(data)
        values = found.field("values").to_pylist()
        counts = found.field("counts").to_pylist()
        pairs = [(_text(v), int(c)) for v, c in zip(values, counts, strict=True) if v is not None]
        merged: dict[str, int] = {}
        for key, count in pairs:  # distinct values can share a text (1 and 1.0): merge them
            merged[key] = merged.get(key, 0) + count
        return dict(sorted(merged.items(), key=lambda item: (-item[1], item[0])))

    def codes(self) -> tuple[NDArray[np.intp], list[str]]:
        """Each row's index into the list of distinct value texts, -1 for null."""
        data = self.data
        if pa.types.is_dictionary(data.type):
            data = data.cast(data.type.value_type)
        encoded = (
            data.combine_chunks().dictionary_encode() if len(data) else pa.array([], pa.int8()).dictionary_encode()
        )
        codes = np.asarray(pc.fill_null(encoded.indices.cast(pa.int64()), -1).to_numpy(), dtype=np.intp)
        return codes, [_text(v) for v in encoded.dictionary.to_pylist()]

    def take(self, rows: NDArray[np.intp]) -> Column:
        return Column(self.name, self.data.take(pa.array(rows, type=pa.int64())))

    def to_pandas(self) -> pd.Series:
        return cast(pd.Series, self.data.to_pandas())


def _text(value: Any) -> str:
    return str(value)


def _from_series(name: str, series: pd.Series) -> Column:
    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        # mixed or odd objects: keep them as text, nulls stay null
        text = series.astype(str).where(series.notna(), None)
        array = pa.array(text, type=pa.string(), from_pandas=True)
    if pa.types.is_null(array.type):  # an all-None object column
        array = array.cast(pa.string())
    if isinstance(array, pa.ChunkedArray):
        # pandas' Arrow-backed columns (pandas 3 strings) come back chunked already; wrapping one in
        # `chunked_array([...])` would rebuild it value by value in Python (3 s per million strings).
        return Column(str(name), array)
    return Column(str(name), pa.chunked_array([array]))


class Table:
    """Columns of a source, read lazily: a Parquet file one column at a time, anything else in memory."""

    def __init__(self, source: Source | Table) -> None:
        self._frame: pd.DataFrame | None = None
        self._arrow: pa.Table | None = None
        self._parquet: pq.ParquetFile | None = None
        if isinstance(source, Table):
            self._frame, self._arrow, self._parquet = source._frame, source._arrow, source._parquet
            self.names: list[str] = list(source.names)
            self.num_rows: int = source.num_rows
            return
        if isinstance(source, pd.DataFrame):
            self._frame = source
            self.names = [str(c) for c in source.columns]
            self.num_rows = len(source)
        elif isinstance(source, pa.Table):
            self._arrow = source
            self.names = list(source.column_names)
            self.num_rows = source.num_rows
        elif isinstance(source, str | Path):
            path = Path(source)
            if not path.is_file():
                raise InvalidInput(f"{path}: no such file")
            suffix = path.suffix.lower()
            try:
                if suffix in {".parquet", ".pq"}:
                    self._parquet = pq.ParquetFile(path)
                    self.names = list(self._parquet.schema_arrow.names)
                    self.num_rows = self._parquet.metadata.num_rows
                elif suffix in {".csv", ".tsv", ".txt"}:
                    options = pa_csv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
                    self._arrow = pa_csv.read_csv(path, parse_options=options)
                    self.names = list(self._arrow.column_names)
                    self.num_rows = self._arrow.num_rows
                else:
                    raise InvalidInput(f"{path}: expected a .csv or .parquet file")
            except (pa.ArrowInvalid, OSError) as error:
                raise InvalidInput(f"{path}: cannot read it as {suffix[1:]}: {error}") from None
        else:
            raise InvalidInput(f"expected a pandas DataFrame, a pyarrow Table or a file path, not {type(source)}")
        if len(set(self.names)) != len(self.names):
            raise InvalidInput("column names must be unique")

    def column(self, name: str) -> Column:
        if name not in self.names:
            raise InvalidInput(f"no column {name!r}")
        if self._frame is not None:
            return _from_series(name, self._frame[self._frame.columns[self.names.index(name)]])
        if self._arrow is not None:
            return Column(name, self._arrow.column(name))
        assert self._parquet is not None
        return Column(name, self._parquet.read(columns=[name]).column(0))

    def columns(self, names: Sequence[str] | None = None) -> Iterator[Column]:
        for name in self.names if names is None else names:
            yield self.column(name)
