"""INSERT ... ON CONFLICT DO UPDATE for both backends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    update: Sequence[str],
    where: ColumnElement[bool] | None = None,
) -> None:
    """Insert `rows`; on a key conflict set the `update` columns from the new row (only where `where`
    holds, if given; refer to the new row as `table.excluded` via `excluded_columns`)."""
    if not rows:
        return
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: stmt.excluded[c] for c in update},
        where=where,
    )
    conn.execute(stmt, list(rows))


def insert_if_missing(conn: Connection, table: Table, row: Mapping[str, Any], keys: Sequence[str]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on the unique `keys`; True if this call inserted the row."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(table).values(**row).on_conflict_do_nothing(index_elements=list(keys))
    return conn.execute(stmt.returning(table.c[keys[0]])).first() is not None
