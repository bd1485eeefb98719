"""Per-version statistics of a time window, read from the request log that serving replicas write.

Replicas write to one shared directory (`LOOPML_REQUEST_LOG_DIR`, default `LOOPML_HOME/request-log`):
open segments (`*.open`, flushed every 200 ms) and sealed Parquet segments waiting to be published at its top,
published ones under `sealed/`. The reader takes all three, so an analysis window sees requests within a
flush interval of when they were answered, not only once a segment is sealed (every 10 seconds by default).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow.compute as pc

from loopml.deploy.analysis import WindowStats
from loopml.deploy.quality import Labelled
from loopml.serving import read_open_segment, read_segments

__all__ = ["RequestLogReader", "VersionKey"]

VersionKey = tuple[str, int]
"""(model, version)."""

LabelSource = Callable[[list[str]], Mapping[str, object]]
"""The labels that have arrived for some request ids (a request id without a label is left out)."""

_COLUMNS = ("request_id", "time_ms", "deployment", "model", "version", "role", "status", "latency_ms", "outputs")


class RequestLogReader:
    """Reads the request log under `directory` (see the module docstring)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def rows(self, deployment: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """The requests of `deployment` answered in `[start_ms, end_ms)`, once each (a segment being sealed
        while it is read may show up twice: rows are deduplicated by request id, version and role)."""
        seen: set[tuple[str, str, int, str]] = set()
        found: list[dict[str, Any]] = []
        for row in self._all_rows(deployment, start_ms, end_ms):
            key = (row["request_id"], row["model"], row["version"], row["role"])
            if key not in seen:
                seen.add(key)
                found.append(row)
        return found

    def stats(
        self, deployment: str, start_ms: int, end_ms: int, labels: LabelSource | None = None
    ) -> dict[VersionKey, WindowStats]:
        """Requests, 5xx errors, latencies and predictions of each version in the window; with `labels`, the
        predictions of the successful answers whose labels arrived, paired with them by request id."""
        grouped: dict[VersionKey, list[dict[str, Any]]] = defaultdict(list)
        for row in self.rows(deployment, start_ms, end_ms):
            grouped[(row["model"], int(row["version"]))].append(row)
        answered = [r["request_id"] for rows in grouped.values() for r in rows if int(r["status"]) < 400]
        found = labels(answered) if labels is not None and answered else {}
        return {key: _stats(rows, found) for key, rows in grouped.items()}

    def _all_rows(self, deployment: str, start_ms: int, end_ms: int) -> Iterator[dict[str, Any]]:
        if not self.directory.is_dir():
            return
        sealed = [
            p for p in sorted(self.directory.glob("sealed/*.parquet")) if _may_hold(p, deployment, start_ms, end_ms)
        ]
        parquet = sealed + sorted(self.directory.glob("*.parquet"))
        for path in parquet:
            try:
                table = read_segments(path).select(list(_COLUMNS))
            except FileNotFoundError:  # moved to sealed/ since it was listed: read there on the next window
                continue
            mask = pc.and_(
                pc.equal(table.column("deployment"), deployment),
                pc.and_(pc.greater_equal(table.column("time_ms"), start_ms), pc.less(table.column("time_ms"), end_ms)),
            )
            yield from table.filter(mask).to_pylist()
        for path in sorted(self.directory.glob("*.open")):
            try:
                columns, _torn = read_open_segment(path)
            except FileNotFoundError:
                continue
            for i, name in enumerate(columns["deployment"]):
                if name == deployment and start_ms <= columns["time_ms"][i] < end_ms:
                    yield {c: columns[c][i] for c in _COLUMNS}


def _may_hold(path: Path, deployment: str, start_ms: int, end_ms: int) -> bool:
    """False when the segment's metadata sidecar says it has nothing of `deployment` in the window."""
    try:
        meta = orjson.loads(path.with_suffix(".json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return True
    try:
        return bool(
            deployment in meta["deployments"] and meta["min_time_ms"] < end_ms and meta["max_time_ms"] >= start_ms
        )
    except (KeyError, TypeError):
        return True


def _stats(rows: list[dict[str, Any]], labels: Mapping[str, object]) -> WindowStats:
    errors = sum(1 for r in rows if int(r["status"]) >= 500)
    latencies = [float(r["latency_ms"]) for r in rows]
    predictions: list[object] = []
    labelled: list[Labelled] = []
    for row in rows:
        if int(row["status"]) >= 400:
            continue
        outputs = orjson.loads(row["outputs"])
        answers = outputs if isinstance(outputs, list) else [outputs]  # one prediction per record
        predictions.extend(answers)
        if row["request_id"] in labels:
            labelled.extend(_pairs(answers, labels[row["request_id"]]))
    return WindowStats(len(rows), errors, latencies, predictions, labelled)


def _pairs(answers: list[object], label: object) -> list[Labelled]:
    """A request's predictions with its label: one label for a one-record request, or a list of one label
    per record (as the monitors read feedback); anything else pairs nothing."""
    if isinstance(label, list) and len(label) == len(answers):
        return [(a, y) for a, y in zip(answers, label, strict=True) if y is not None]
    if len(answers) == 1 and label is not None:
        return [(answers[0], label)]
    return []


def percentiles(values: list[float], qs: tuple[float, ...]) -> dict[str, float | None]:
    """`{"p50": ..., ...}` of `values` (None for an empty list)."""
    if not values:
        return {f"p{_label(q)}": None for q in qs}
    found = np.percentile(np.asarray(values, dtype=np.float64), qs)
    return {f"p{_label(q)}": round(float(v), 6) for q, v in zip(qs, found, strict=True)}


def _label(q: float) -> str:
    return str(int(q)) if math.isclose(q, round(q)) else str(q).replace(".", "_")
