"""Point-in-time correct retrieval, Feast's rule: for each label row and feature view, the latest feature row
of the same entity with feature timestamp <= label timestamp, if it is within the view's TTL of the label
timestamp (feature_ts >= label_ts - ttl), else nulls. Rows with the same entity and timestamp: the highest
created timestamp wins (a row without one loses to a row with one), then the row read last.

One DuckDB ASOF LEFT JOIN per view on the keys and timestamps, then the tie rule on the matched rows only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from loopml.errors import InvalidInput
from loopml.features.sources import micros, quote

LABEL_ROW = "__label_row"


@dataclass(frozen=True)
class JoinView:
    """One feature view in a join: its DuckDB relation (see sources.register_view) and what to take."""

    alias: str
    name: str
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    outputs: tuple[str, ...]
    """Output column name of each feature."""
    ttl_seconds: int | None


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    # Every result that has an order says so (ORDER BY); without this promise DuckDB runs freer and leaner.
    con.execute("SET preserve_insertion_order=false")
    # A small label side would otherwise become a nested loop join (tens of times slower); DuckDB versions
    # without the setting never loop.
    with contextlib.suppress(duckdb.Error):
        con.execute("SET asof_loop_join_threshold=0")
    return con


def latest_rows(view: JoinView) -> str:
    keys = ", ".join(quote(k) for k in view.join_keys)
    not_null = " AND ".join(f"{quote(k)} IS NOT NULL" for k in view.join_keys)
    features = ", ".join(quote(f) for f in view.features)
    return (
        f"SELECT {keys}, __ts, {features} FROM {view.alias} WHERE {not_null} AND __ts IS NOT NULL "
        f"QUALIFY row_number() OVER (PARTITION BY {keys}, __ts "
        "ORDER BY __created DESC NULLS LAST, __file DESC, __row DESC) = 1"
    )


def _label_time(con: duckdb.DuckDBPyConnection, timestamp: str) -> str:
    row = con.execute(f"DESCRIBE SELECT {quote(timestamp)} FROM __labels").fetchone()
    kind = str(row[1]) if row else ""
    try:
        return micros(timestamp, kind)
    except InvalidInput:
        raise InvalidInput(f"the label timestamp column {timestamp!r} holds {kind}, not times") from None


def point_in_time_join(
    con: duckdb.DuckDBPyConnection, labels: pa.Table, timestamp: str, views: Sequence[JoinView]
) -> pa.Table:
    """The label rows, in their order, with the features of every view joined by the PIT rule."""
    if timestamp not in labels.column_names:
        raise InvalidInput(f"the labels have no timestamp column {timestamp!r}; they have {labels.column_names}")
    for view in views:
        missing = [k for k in view.join_keys if k not in labels.column_names]
        if missing:
            raise InvalidInput(f"the labels lack the join keys {missing} of feature view {view.name!r}")
    clash = set(labels.column_names) & {out for view in views for out in view.outputs}
    if clash:
        raise InvalidInput(
            f"the labels already have columns named like features: {sorted(clash)}; rename them or ask for "
            "full feature names (view__feature)"
        )
    con.register("__labels", labels.append_column(LABEL_ROW, pa.array(range(labels.num_rows), pa.int64())))
    label_ts = _label_time(con, timestamp)
    try:
        for index, view in enumerate(views):
            _join_one(con, index, view, label_ts)
        joins = " ".join(f"LEFT JOIN __joined{i} USING ({LABEL_ROW})" for i in range(len(views)))
        result = con.sql(f"SELECT * FROM __labels {joins} ORDER BY {LABEL_ROW}").to_arrow_table()
    except duckdb.Error as error:
        raise InvalidInput(f"the point-in-time join failed: {' '.join(str(error).split())}") from None
    finally:
        for index in range(len(views)):
            for table in ("__matched", "__pairs", "__best", "__joined"):
                con.execute(f"DROP TABLE IF EXISTS {table}{index}")
        con.unregister("__labels")
    return result.drop_columns([LABEL_ROW])


def _join_one(con: duckdb.DuckDBPyConnection, index: int, view: JoinView, label_ts: str) -> None:
    """One view's features for every label row, in three steps: an ASOF join on the keys and timestamps
    alone finds the time of the row each label sees; the rows at those (entity, time) pairs are read once,
    the tie rule picking one per pair; they are joined back to the labels (nulls beyond the TTL). Sorting
    only keys and times, and reading the feature values of the matched rows only, costs about half of an
    ASOF join that carries every feature through its sort."""
    keys = list(view.join_keys)
    key_list = ", ".join(quote(k) for k in keys)
    not_null = " AND ".join(f"{quote(k)} IS NOT NULL" for k in keys)

    def within(alias: str = "") -> str:
        if view.ttl_seconds is None:
            return "TRUE"
        return f"{alias}__fts >= {alias}__lts - {int(view.ttl_seconds) * 1_000_000}"

    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __matched{index} AS "
        f"SELECT l.{LABEL_ROW}, {', '.join(f'l.{quote(k)}' for k in keys)}, l.__lts, d.__ts AS __fts FROM "
        f"(SELECT {LABEL_ROW}, {key_list}, {label_ts} AS __lts FROM __labels) l ASOF LEFT JOIN "
        f"(SELECT {key_list}, __ts FROM {view.alias} WHERE {not_null} AND __ts IS NOT NULL) d "
        f"ON {' AND '.join(f'l.{quote(k)} = d.{quote(k)}' for k in keys)} AND l.__lts >= d.__ts"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __pairs{index} AS SELECT DISTINCT {key_list}, __fts FROM __matched{index} "
        f"WHERE __fts IS NOT NULL AND {within()}"
    )
    features = ", ".join(f"s.{quote(f)}" for f in view.features)
    on_pairs = " AND ".join(f"s.{quote(k)} = p.{quote(k)}" for k in keys)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __best{index} AS SELECT {', '.join(f's.{quote(k)}' for k in keys)}, s.__ts, "
        f"{features} FROM {view.alias} s SEMI JOIN __pairs{index} p ON {on_pairs} AND s.__ts = p.__fts "
        f"QUALIFY row_number() OVER (PARTITION BY {', '.join(f's.{quote(k)}' for k in keys)}, s.__ts "
        "ORDER BY s.__created DESC NULLS LAST, s.__file DESC, s.__row DESC) = 1"
    )
    outputs = ", ".join(f"b.{quote(f)} AS {quote(o)}" for f, o in zip(view.features, view.outputs, strict=True))
    on_best = " AND ".join(f"b.{quote(k)} = m.{quote(k)}" for k in keys)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE __joined{index} AS SELECT m.{LABEL_ROW}, {outputs} FROM __matched{index} m "
        f"LEFT JOIN __best{index} b ON {on_best} AND b.__ts = m.__fts AND {within('m.')}"
    )


def history(con: duckdb.DuckDBPyConnection, view: JoinView, start_us: int | None, end_us: int | None) -> pa.Table:
    """Entity-less retrieval: every (entity, timestamp) row of a view with start <= ts < end, deduplicated by
    the same rule as the join, ordered by entity and time."""
    where = []
    if start_us is not None:
        where.append(f"__ts >= {int(start_us)}")
    if end_us is not None:
        where.append(f"__ts < {int(end_us)}")
    keys = ", ".join(quote(k) for k in view.join_keys)
    outputs = ", ".join(f"{quote(f)} AS {quote(o)}" for f, o in zip(view.features, view.outputs, strict=True))
    query = (
        f"SELECT {keys}, make_timestamp(__ts) AS event_timestamp, {outputs} FROM ({latest_rows(view)}) "
        f"{'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {keys}, __ts"
    )
    return con.sql(query).to_arrow_table()
