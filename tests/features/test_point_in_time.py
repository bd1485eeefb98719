"""The point-in-time join against a brute-force reference of Feast's rule, on random data (Hypothesis):
random timestamps, duplicates, ties on created timestamps, TTL edges, late-arriving rows and entities with
no features. The join must equal the reference exactly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.errors import InvalidInput
from loopml.features.offline import JoinView, connect, history, point_in_time_join
from loopml.features.sources import SourceFiles, register_view

EPOCH = dt.datetime(2012, 1, 1)


def minutes(m: int | None) -> dt.datetime | None:
    return None if m is None else EPOCH + dt.timedelta(minutes=m)


def reference(features: list[dict[str, Any]], labels: list[dict[str, Any]], ttl_minutes: int | None) -> list[Any]:
    """Feast's rule written as loops: the latest row with ts <= label ts, ties to the highest created time
    (no created time loses), then to the row read last; nothing if it is older than the TTL."""
    out = []
    for label in labels:
        best = None
        for position, row in enumerate(features):
            if row["key"] != label["key"] or row["ts"] is None or label["ts"] is None or row["ts"] > label["ts"]:
                continue
            rank = (row["ts"], row["created"] is not None, row["created"] or EPOCH, position)
            if best is None or rank > best[0]:
                best = (rank, row)
        if best is None or (
            ttl_minutes is not None and best[1]["ts"] < label["ts"] - dt.timedelta(minutes=ttl_minutes)
        ):
            out.append(None)
        else:
            out.append(best[1]["value"])
    return out


def join(features: list[dict[str, Any]], labels: list[dict[str, Any]], ttl_minutes: int | None) -> list[Any]:
    con = connect()
    table = pa.table(
        {
            "key": pa.array([r["key"] for r in features], pa.int64()),
            "ts": pa.array([r["ts"] for r in features], pa.timestamp("us")),
            "created": pa.array([r["created"] for r in features], pa.timestamp("us")),
            "value": pa.array([r["value"] for r in features], pa.int64()),
        }
    )
    spec = {
        "join_keys": ["key"],
        "source": {"type": "file", "timestamp": "ts", "created": "created"},
        "schema": [["value", "int", None]],
    }
    register_view(con, {"spec": spec}, SourceFiles(table=table), "v")
    label_table = pa.table(
        {
            "key": pa.array([r["key"] for r in labels], pa.int64()),
            "event_timestamp": pa.array([r["ts"] for r in labels], pa.timestamp("us")),
        }
    )
    ttl = None if ttl_minutes is None else ttl_minutes * 60
    view = JoinView("v", "v", ("key",), ("value",), ("value",), ttl)
    result = point_in_time_join(con, label_table, "event_timestamp", [view])
    con.close()
    assert result.column("key").to_pylist() == [r["key"] for r in labels]  # every label row, in order
    return result.column("value").to_pylist()


feature_rows = st.lists(
    st.fixed_dictionaries(
        {
            "key": st.integers(0, 3),
            "ts": st.one_of(st.none(), st.integers(0, 30)).map(minutes),
            "created": st.one_of(st.none(), st.integers(0, 4)).map(minutes),
        }
    ),
    max_size=40,
)
label_rows = st.lists(
    st.fixed_dictionaries({"key": st.integers(0, 4), "ts": st.one_of(st.none(), st.integers(-2, 34)).map(minutes)}),
    min_size=1,
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(features=feature_rows, labels=label_rows, ttl=st.one_of(st.none(), st.integers(0, 12)))
def test_the_join_equals_the_brute_force_reference(
    features: list[dict[str, Any]], labels: list[dict[str, Any]], ttl: int | None
) -> None:
    rows = [{**row, "value": i} for i, row in enumerate(features)]
    assert join(rows, labels, ttl) == reference(rows, labels, ttl)


def test_worked_example_of_the_rule() -> None:
    """Station 1 at 10:00 and 10:00 again (created later: wins), 11:00; TTL 1 hour."""
    features = [
        {"key": 1, "ts": minutes(600), "created": minutes(600), "value": 10},
        {"key": 1, "ts": minutes(600), "created": minutes(605), "value": 11},
        {"key": 1, "ts": minutes(660), "created": minutes(660), "value": 20},
    ]
    labels = [
        {"key": 1, "ts": minutes(599)},  # before any feature row: null
        {"key": 1, "ts": minutes(600)},  # same instant: the tie goes to the later created row
        {"key": 1, "ts": minutes(659)},  # 10:59: still the 10:00 row
        {"key": 1, "ts": minutes(720)},  # 12:00: the 11:00 row, exactly at the TTL edge (kept)
        {"key": 1, "ts": minutes(721)},  # 12:01: the 11:00 row is older than the TTL: null, not an older row
        {"key": 2, "ts": minutes(700)},  # an entity without features: null, and the row is kept
    ]
    assert join(features, labels, ttl_minutes=60) == [None, 11, 11, 20, None, None]


def test_pushed_rows_count_after_the_source_and_win_exact_ties(tmp_path: Path) -> None:
    source = pa.table({"key": [1], "ts": [minutes(10)], "value": [1]})
    pushed = tmp_path / "pushed.parquet"
    pq.write_table(pa.table({"key": [1, 1], "ts": [minutes(10), minutes(5)], "value": [2, 3]}), pushed)
    con = connect()
    spec = {"join_keys": ["key"], "source": {"type": "file", "timestamp": "ts"}, "schema": [["value", "int", None]]}
    register_view(con, {"spec": spec}, SourceFiles(table=source, pushed=(str(pushed),)), "v")
    labels = pa.table({"key": [1, 1], "event_timestamp": pa.array([minutes(7), minutes(11)], pa.timestamp("us"))})
    view = JoinView("v", "v", ("key",), ("value",), ("value",), None)
    assert point_in_time_join(con, labels, "event_timestamp", [view]).column("value").to_pylist() == [3, 2]
    everything = history(con, view, None, None)
    assert everything.column("value").to_pylist() == [3, 2]  # one row per (entity, time), ordered
    in_range = history(con, view, int(minutes(6).timestamp() * 1e6), None)  # type: ignore[union-attr]
    assert in_range.column("value").to_pylist() == [2]


def test_labels_without_the_join_key_or_timestamp_are_refused() -> None:
    con = connect()
    spec = {"join_keys": ["key"], "source": {"type": "file", "timestamp": "ts"}, "schema": [["value", "int", None]]}
    register_view(con, {"spec": spec}, SourceFiles(table=pa.table({"key": [1], "ts": [minutes(1)], "value": [1]})), "v")
    view = JoinView("v", "v", ("key",), ("value",), ("value",), None)
    with pytest.raises(InvalidInput, match="lack the join keys"):
        point_in_time_join(con, pa.table({"station": [1], "event_timestamp": [minutes(1)]}), "event_timestamp", [view])
    with pytest.raises(InvalidInput, match="no timestamp column 'when'"):
        point_in_time_join(con, pa.table({"key": [1], "event_timestamp": [minutes(1)]}), "when", [view])
    with pytest.raises(InvalidInput, match="not times"):
        point_in_time_join(con, pa.table({"key": [1], "event_timestamp": [1.5]}), "event_timestamp", [view])
