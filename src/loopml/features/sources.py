"""Reading a feature view's rows into DuckDB: its source (files, a PostgreSQL query, a logged dataset) plus
the rows pushed to it, under one shape every join uses.

Each view becomes a DuckDB relation with its join keys, `__ts` (event time, microseconds since the epoch,
UTC), `__created` (the same, or NULL),
`__file` and `__row` (position in the source: among rows with the same key, time and created time, the one
read last wins) and its feature columns.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from loopml.errors import IntegrityError, InvalidInput, NotFound

LOGICAL = {
    "int": ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"),
    "float": ("FLOAT", "DOUBLE", "DECIMAL", "REAL"),
    "string": ("VARCHAR",),
    "bool": ("BOOLEAN",),
    "timestamp": ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S", "DATE"),
}
"""DuckDB column types each declared dtype accepts (an int column is accepted as a float feature)."""


def accepts(dtype: str, duckdb_type: str) -> bool:
    base = duckdb_type.split("(")[0].strip().upper()
    allowed = LOGICAL[dtype] + (LOGICAL["int"] if dtype == "float" else ())
    return base in allowed


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class SourceFiles:
    """Where a view's rows are: files to scan (in order) or an Arrow table already read."""

    files: tuple[str, ...] = ()
    table: pa.Table | None = None
    pushed: tuple[str, ...] = ()


DatasetResolver = Callable[[str], str]
"""Digest of a logged dataset -> path of its file (NotFound when there is none)."""


def files_of(path: str) -> tuple[str, ...]:
    if any(ch in path for ch in "*?["):
        found = tuple(sorted(glob.glob(path)))
        if not found:
            raise InvalidInput(f"no file matches the FileSource path {path!r}")
        return found
    if not os.path.isfile(path):
        raise InvalidInput(f"the FileSource file {path!r} does not exist")
    return (path,)


def _is_csv(path: str) -> bool:
    return path.lower().endswith((".csv", ".csv.gz", ".tsv"))


def _postgres_table(source: dict[str, Any]) -> pa.Table:
    url = os.environ.get(source["url_env"])
    if not url:
        raise InvalidInput(
            f"PostgresSource reads its database URL from ${source['url_env']}, which is not set "
            "(postgresql://user:password@host:5432/db)"
        )
    import psycopg

    try:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=10) as conn:
            cursor = conn.execute(source["query"])  # the user's own query, on the user's database
            names = [column.name for column in cursor.description or ()]
            rows = cursor.fetchall()
    except psycopg.Error as error:
        raise InvalidInput(f"PostgresSource query failed: {' '.join(str(error).split())}") from None
    return pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})


def locate(source: dict[str, Any], resolve_dataset: DatasetResolver, pushed: Sequence[str] = ()) -> SourceFiles:
    kind = source["type"]
    if kind == "file":
        return SourceFiles(files=files_of(source["path"]), pushed=tuple(pushed))
    if kind == "postgres":
        return SourceFiles(table=_postgres_table(source), pushed=tuple(pushed))
    if kind == "dataset":
        path = resolve_dataset(source["digest"])
        return SourceFiles(table=_verified_dataset(path, source["digest"]), pushed=tuple(pushed))
    raise InvalidInput(f"unknown source type {kind!r}")


def _verified_dataset(path: str, digest: str) -> pa.Table:
    import pandas as pd

    from loopml.data import content_digest

    if not Path(path).is_file():
        raise NotFound(f"the file of dataset {digest[:12]} ({path!r}) is not there any more")
    frame = pd.read_csv(path) if _is_csv(path) else pd.read_parquet(path)
    if content_digest(frame) != digest:
        raise IntegrityError(
            f"the file of dataset {digest[:12]} ({path!r}) changed since it was logged; log the new data as a "
            "new dataset version and point the DatasetSource at its digest"
        )
    return pa.Table.from_pandas(frame, preserve_index=False)


def _scan(con: duckdb.DuckDBPyConnection, files: SourceFiles, alias: str) -> str:
    """A SQL expression of every row with `__file` and `__row` (the source first, then pushes)."""
    parts: list[str] = []
    index = 0
    if files.table is not None:
        table = files.table.append_column("__row", pa.array(range(files.table.num_rows), pa.int64()))
        con.register(f"{alias}_arrow", table)
        parts.append(f"SELECT *, 0 AS __file FROM {alias}_arrow")
        index = 1
    for path in files.files:
        literal = "'" + path.replace("'", "''") + "'"
        if _is_csv(path):
            from pyarrow import csv

            # Read by pyarrow so that `__row` is the line order for certain (a parallel CSV scan has none).
            table = csv.read_csv(path)
            table = table.append_column("__row", pa.array(range(table.num_rows), pa.int64()))
            con.register(f"{alias}_csv{index}", table)
            parts.append(f"SELECT *, {index} AS __file FROM {alias}_csv{index}")
        else:
            parts.append(
                f"SELECT * EXCLUDE (file_row_number), {index} AS __file, file_row_number AS __row "
                f"FROM read_parquet({literal}, file_row_number=true)"
            )
        index += 1
    for path in files.pushed:
        literal = "'" + path.replace("'", "''") + "'"
        parts.append(
            f"SELECT * EXCLUDE (file_row_number), {index} AS __file, file_row_number AS __row "
            f"FROM read_parquet({literal}, file_row_number=true)"
        )
        index += 1
    return " UNION ALL BY NAME ".join(parts)


def describe(con: duckdb.DuckDBPyConnection, files: SourceFiles, alias: str) -> dict[str, str]:
    """Column name -> DuckDB type of the source (pushed rows included)."""
    rows = con.execute(f"DESCRIBE SELECT * FROM ({_scan(con, files, alias)}) LIMIT 0").fetchall()
    return {str(row[0]): str(row[1]) for row in rows if row[0] not in ("__file", "__row")}


def micros(column: str, duckdb_type: str) -> str:
    """An expression of `column` as microseconds since the epoch (UTC). Times are compared as integers: a
    cast from TIMESTAMPTZ to TIMESTAMP goes through the time-zone library for every value, `epoch_us` not."""
    kind = duckdb_type.upper()
    if kind.startswith("TIMESTAMP"):
        return f"epoch_us({quote(column)})"
    if kind == "DATE":
        return f"epoch_us(CAST({quote(column)} AS TIMESTAMP))"
    if kind == "VARCHAR":
        return f"epoch_us(CAST({quote(column)} AS TIMESTAMPTZ))"
    raise InvalidInput(f"column {column!r} is {duckdb_type}, not a timestamp")


def register_view(con: duckdb.DuckDBPyConnection, view: dict[str, Any], files: SourceFiles, alias: str) -> None:
    """Create the DuckDB view `alias` of a feature view's rows in the common shape."""
    spec = view["spec"]
    source = spec["source"]
    types = describe(con, files, alias)
    keys = ", ".join(quote(key) for key in spec["join_keys"])
    features = ", ".join(quote(name) for name, _dtype, _default in spec["schema"])
    created = micros(source["created"], types[source["created"]]) if source.get("created") else "NULL::BIGINT"
    event = micros(source["timestamp"], types[source["timestamp"]])
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {alias} AS SELECT {keys}, {event} AS __ts,"
        f" {created} AS __created, __file, __row, {features} FROM ({_scan(con, files, alias)})"
    )
