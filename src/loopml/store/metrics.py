"""Metric points: chunked history (see `schema.metric_chunks`) plus the latest value per key, which is
what search and order-by read. Ingest is the hot path: a batch becomes one row per key."""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Sequence

from sqlalchemy import Connection, and_, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from loopml.domain import Metric
from loopml.store.audit import AuditLog
from loopml.store.schema import latest_metrics, metric_chunks

_MAX_KEYS_IN_AUDIT = 50
_SWAP = sys.byteorder == "big"  # chunks are little-endian on disk, whatever the machine


def _pack(values: array) -> bytes:  # type: ignore[type-arg]
    if _SWAP:  # pragma: no cover - no big-endian machine in CI
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _unpack(typecode: str, data: bytes) -> array:  # type: ignore[type-arg]
    values = array(typecode)
    values.frombytes(data)
    if _SWAP:  # pragma: no cover
        values.byteswap()
    return values


class MetricRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def log(self, run_id: str, points: Sequence[Metric]) -> int:
        """Append `points` to the run's history and move each key's latest value forward."""
        if not points:
            return 0
        columns: dict[str, tuple[array, array, array]] = {}  # type: ignore[type-arg]
        for key, value, step, timestamp in points:
            column = columns.get(key)
            if column is None:
                column = columns[key] = (array("q"), array("q"), array("d"))
            column[0].append(step)
            column[1].append(timestamp)
            column[2].append(value)
        chunks, latest = [], []
        for key, (steps, stamps, values) in columns.items():
            chunks.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "count": len(steps),
                    "min_step": min(steps),
                    "max_step": max(steps),
                    "steps": _pack(steps),
                    "timestamps": _pack(stamps),
                    "values": _pack(values),
                }
            )
            last = max(range(len(steps)), key=lambda i: (steps[i], stamps[i]))
            value = values[last]
            latest.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "value": None if math.isnan(value) else value,
                    "is_nan": math.isnan(value),
                    "step": steps[last],
                    "timestamp": stamps[last],
                }
            )
        self._conn.execute(insert(metric_chunks), chunks)
        self._move_latest(latest)
        keys = sorted(columns)
        self._audit.record(
            "run.log_metrics",
            "run",
            run_id,
            after={"points": len(points), "keys": keys[:_MAX_KEYS_IN_AUDIT], "key_count": len(keys)},
        )
        return len(points)

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
        query = (
            select(metric_chunks.c.steps, metric_chunks.c.timestamps, metric_chunks.c["values"])
            .where(metric_chunks.c.run_id == run_id, metric_chunks.c.key == key)
            .order_by(metric_chunks.c.id)
        )
        points: list[Metric] = []
        for row in self._conn.execute(query):
            steps, stamps, values = (
                _unpack("q", row.steps),
                _unpack("q", row.timestamps),
                _unpack("d", row[2]),
            )
            points.extend(Metric(key, v, s, t) for s, t, v in zip(steps, stamps, values, strict=True))
        points.sort(key=lambda m: (m.step, m.timestamp))  # stable: ties keep logging order
        return points

    def count(self, run_id: str) -> int:
        """How many points the run has stored, over all keys."""
        total = self._conn.execute(
            select(func.coalesce(func.sum(metric_chunks.c.count), 0)).where(metric_chunks.c.run_id == run_id)
        ).scalar_one()
        return int(total)
