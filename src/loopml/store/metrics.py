"""Metric points: chunked history (see `schema.metric_chunks`) plus the latest value per key, which is
what search and order-by read. Ingest is the hot path: a batch becomes one row per key, built with numpy
from the batch's columns, never one Python object per point."""

from __future__ import annotations

import itertools
import math
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from loopml.domain import Metric, MetricColumns, MetricSeries
from loopml.errors import AlreadyExists
from loopml.store.audit import AuditLog, now_ms
from loopml.store.schema import latest_metrics, metric_batches, metric_chunks
from loopml.store.upsert import insert_if_missing

_MAX_KEYS_IN_AUDIT = 50


def _latest_index(steps: np.ndarray, stamps: np.ndarray) -> int:
    """Index of the latest point: highest step, then latest timestamp, then the one logged last."""
    at_top = np.flatnonzero(steps == steps.max())
    top_stamps = stamps[at_top]
    return int(at_top[np.flatnonzero(top_stamps == top_stamps.max())[-1]])


def _rows(run_id: str, batch: MetricColumns) -> tuple[list[dict[str, object]], list[dict[str, object]], list[str]]:
    """The `metric_chunks` rows (one per key) and `latest_metrics` rows of a batch, and its sorted keys."""
    steps = np.asarray(batch.steps, dtype=np.int64)
    stamps = np.asarray(batch.timestamps, dtype=np.int64)
    values = np.asarray(batch.values, dtype=np.float64)
    groups: dict[str, slice | np.ndarray] = {}
    # Each key's number in order of first appearance, at C speed (`dict.fromkeys`, `map`); sorting the key
    # strings themselves (np.unique on objects) cost 5x more.
    codes = {key: i for i, key in enumerate(dict.fromkeys(batch.keys))}
    if len(codes) == 1:
        groups[next(iter(codes))] = slice(None)
    else:
        coded = np.fromiter(map(codes.__getitem__, batch.keys), dtype=np.intp, count=len(batch))
        order = np.argsort(coded, kind="stable")  # keeps each key's points in logging order
        bounds = np.searchsorted(coded[order], np.arange(len(codes) + 1))
        for name, i in codes.items():
            groups[name] = order[bounds[i] : bounds[i + 1]]
    chunks: list[dict[str, object]] = []
    latest: list[dict[str, object]] = []
    for key, where in groups.items():
        key_steps, key_stamps, key_values = steps[where], stamps[where], values[where]
        chunks.append(
            {
                "run_id": run_id,
                "key": key,
                "count": len(key_steps),
                "min_step": int(key_steps.min()),
                "max_step": int(key_steps.max()),
                "steps": key_steps.astype("<i8").tobytes(),
                "timestamps": key_stamps.astype("<i8").tobytes(),
                "values": key_values.astype("<f8").tobytes(),
            }
        )
        last = _latest_index(key_steps, key_stamps)
        value = float(key_values[last])
        latest.append(
            {
                "run_id": run_id,
                "key": key,
                "value": None if math.isnan(value) else value,
                "is_nan": math.isnan(value),
                "step": int(key_steps[last]),
                "timestamp": int(key_stamps[last]),
            }
        )
    return chunks, latest, sorted(groups)


def _array(typecode: str, column: np.ndarray) -> array[Any]:
    """A column as an `array` of the machine's byte order (one copy of the bytes)."""
    native = array(typecode)
    native.frombytes(np.ascontiguousarray(column, dtype=column.dtype.newbyteorder("=")).tobytes())
    return native


class MetricRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def log(self, run_id: str, batch: MetricColumns, batch_key: str | None = None) -> int:
        """Append the batch to the run's history and move each key's latest value forward.

        With a `batch_key`, a batch this run has already applied under that key is not stored again: the
        answer is the count stored the first time. The key is recorded first, so a concurrent twin waits
        for this transaction and then sees it (PostgreSQL), or is queued behind it (SQLite)."""
        if batch_key is not None and not self._claim(run_id, batch_key, len(batch)):
            return self._applied(run_id, batch_key, len(batch))
        if not len(batch):
            return 0
        chunks, latest, keys = _rows(run_id, batch)
        self._conn.execute(insert(metric_chunks), chunks)
        self._move_latest(latest)
        self._audit.record(
            "run.log_metrics",
            "run",
            run_id,
            after={"points": len(batch), "keys": keys[:_MAX_KEYS_IN_AUDIT], "key_count": len(keys)},
        )
        return len(batch)

    def log_new_runs(self, batches: Sequence[tuple[str, MetricColumns]], project: str) -> int:
        """Store the whole history of runs created in this transaction (an import), with one INSERT per
        table for all of them: the runs have no points yet, so each key's latest value is simply inserted."""
        chunks: list[dict[str, object]] = []
        latest: list[dict[str, object]] = []
        entries: list[tuple[str, str, str, dict[str, Any] | None, dict[str, Any] | None, str | None]] = []
        total = 0
        for run_id, batch in batches:
            if not len(batch):
                continue
            run_chunks, run_latest, keys = _rows(run_id, batch)
            chunks += run_chunks
            latest += run_latest
            total += len(batch)
            after = {"points": len(batch), "keys": keys[:_MAX_KEYS_IN_AUDIT], "key_count": len(keys)}
            entries.append(("run.log_metrics", "run", run_id, None, after, project))
        if chunks:
            self._conn.execute(insert(metric_chunks), chunks)
            self._conn.execute(insert(latest_metrics), latest)
        self._audit.record_many(entries)
        return total

    def _claim(self, run_id: str, batch_key: str, points: int) -> bool:
        row = {"run_id": run_id, "batch_key": batch_key, "points": points, "created_at": now_ms()}
        return insert_if_missing(self._conn, metric_batches, row, ["run_id", "batch_key"])

    def _applied(self, run_id: str, batch_key: str, points: int) -> int:
        stored = self._conn.execute(
            select(metric_batches.c.points).where(
                metric_batches.c.run_id == run_id, metric_batches.c.batch_key == batch_key
            )
        ).scalar_one()
        if stored != points:
            raise AlreadyExists(
                f"batch key {batch_key!r} of run {run_id} was already used for a batch of {stored} points, "
                f"not {points}: give each batch its own key"
            )
        return int(stored)

    def _move_latest(self, rows: list[dict[str, object]]) -> None:
        dialect = sqlite if self._conn.dialect.name == "sqlite" else postgresql
        stmt = dialect.insert(latest_metrics)
        new = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={c: new[c] for c in ("value", "is_nan", "step", "timestamp")},
            where=or_(
                new.step > latest_metrics.c.step,
                and_(new.step == latest_metrics.c.step, new.timestamp >= latest_metrics.c.timestamp),
            ),
        )
        self._conn.execute(stmt, rows)

    def history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of `key`, ordered by step, then timestamp, then the order it was logged in."""
        steps, stamps, values = self._columns(run_id, key)
        return list(map(Metric, itertools.repeat(key), values.tolist(), steps.tolist(), stamps.tolist()))

    def series(self, run_id: str, key: str) -> MetricSeries:
        """The points of `history` as three columns, never one Python object per point."""
        steps, stamps, values = self._columns(run_id, key)
        return MetricSeries(key, _array("q", steps), _array("q", stamps), _array("d", values))

    def history_arrays(self, run_id: str, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`history` as three arrays (steps, timestamps, values) in the same order, without a Python object per
        point (charts of 10,000-step histories read these)."""
        return self._columns(run_id, key)

    def _columns(self, run_id: str, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        query = (
            select(metric_chunks.c.steps, metric_chunks.c.timestamps, metric_chunks.c["values"])
            .where(metric_chunks.c.run_id == run_id, metric_chunks.c.key == key)
            .order_by(metric_chunks.c.id)
        )
        rows = self._conn.execute(query).all()
        if not rows:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0, dtype=np.float64)
        steps = np.concatenate([np.frombuffer(row.steps, dtype="<i8") for row in rows])
        stamps = np.concatenate([np.frombuffer(row.timestamps, dtype="<i8") for row in rows])
        values = np.concatenate([np.frombuffer(row[2], dtype="<f8") for row in rows])
        step_gaps, stamp_gaps = np.diff(steps), np.diff(stamps)
        if not ((step_gaps > 0) | ((step_gaps == 0) & (stamp_gaps >= 0))).all():
            order = np.lexsort((stamps, steps))  # stable: ties keep logging order
            steps, stamps, values = steps[order], stamps[order], values[order]
        return steps, stamps, values

    def count(self, run_id: str) -> int:
        """How many points the run has stored, over all keys."""
        total = self._conn.execute(
            select(func.coalesce(func.sum(metric_chunks.c.count), 0)).where(metric_chunks.c.run_id == run_id)
        ).scalar_one()
        return int(total)
