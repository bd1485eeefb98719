"""Tumbling windows over the request log: durations, reading registered segments, records to frames.

Time windows are aligned to the Unix epoch (a `1d` window runs from 00:00 to 24:00 UTC). Count windows hold
`window_rows` requests in (time, request id) order, extended to the end of the last request's millisecond,
so a window never splits requests logged in the same millisecond.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopml.artifacts import ArtifactStore
from loopml.domain.monitoring import LogSegment
from loopml.errors import InvalidInput

__all__ = [
    "Records",
    "event_times",
    "order_records",
    "parse_duration",
    "parse_window",
    "read_records",
    "unpublished_times",
]

MAX_SECONDS = 10 * 365 * 86_400
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_COLUMNS = ["request_id", "time_ms", "model", "version", "status", "inputs", "outputs"]


def parse_duration(text: str | int | float) -> int:
    """Seconds in `30s`, `15m`, `6h`, `2d`, `1w` (a bare number is seconds)."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text))
        if match is None:
            if not re.fullmatch(r"\s*\d+\s*", str(text)):
                raise InvalidInput(f"not a duration: {text!r} (write 30s, 15m, 6h, 2d or 1w)")
            seconds = float(str(text))
        else:
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 <= seconds <= MAX_SECONDS:
        raise InvalidInput(f"a duration must be between 0 and 10 years, got {text!r}")
    return int(seconds)


def parse_window(text: str | int) -> tuple[int | None, int | None]:
    """(window_seconds, window_rows): `1d` is a time window, a bare integer (`1000`) a count window."""
    value = str(text).strip()
    if value.isdigit():
        rows = int(value)
        if not 1 <= rows <= 100_000_000:
            raise InvalidInput("a count window holds from 1 to 100,000,000 requests")
        return None, rows
    seconds = parse_duration(value)
    if seconds < 1:
        raise InvalidInput(f"a time window must be at least 1s, got {text!r}")
    return seconds, None


def read_records(artifacts: ArtifactStore, segments: Sequence[LogSegment], deployment: str, start: int) -> pa.Table:
    """The records of `deployment` logged at or after `start` (ms), from the segments' blobs, by time."""
    tables = []
    for segment in segments:
        with artifacts.open(segment.sha256) as stream:
            parquet = pq.ParquetFile(pa.BufferReader(stream.read()))
        logged = [_PROBABILITIES] if _PROBABILITIES in parquet.schema_arrow.names else []
        table = _with_probabilities(parquet.read(columns=[*_COLUMNS, "deployment", *logged]))
        keep = pc.and_(pc.equal(table["deployment"], deployment), pc.greater_equal(table["time_ms"], start))
        tables.append(table.filter(keep).select([*_COLUMNS, _PROBABILITIES]))
    if not tables:
        return pa.table({name: pa.array([], type=t) for name, t in _EMPTY})
    return order_records(pa.concat_tables(tables))


def order_records(table: pa.Table) -> pa.Table:
    """The records by (time, request id), each request id once (the first)."""
    order = pc.sort_indices(table, sort_keys=[("time_ms", "ascending"), ("request_id", "ascending")])
    table = table.take(order)
    # the same request may sit in two segments if a publish was retried under another name: keep one
    _, first = np.unique(np.asarray(table["request_id"].to_pylist(), dtype=object), return_index=True)
    return table.take(pa.array(np.sort(first)))


def event_times(table: pa.Table, time_field: str | None) -> np.ndarray:
    """The time (ms) that places each request in a window: when it was logged, or, with `time_field`, the
    earliest value of that input field among the request's rows (see `event_time`); a request without a
    readable value keeps the time it was logged."""
    logged = np.asarray(table["time_ms"].to_numpy(zero_copy_only=False), dtype=np.int64)
    if not time_field:
        return logged
    found = logged.copy()
    marker = orjson.dumps(time_field).decode()
    for i, text in enumerate(table["inputs"].to_pylist()):
        if marker not in text:
            continue
        columns = orjson.loads(text)
        values = columns.get(time_field) if isinstance(columns, dict) else None
        times = [t for t in map(event_time, values if isinstance(values, list) else [values]) if t is not None]
        if times:
            found[i] = min(times)
    return found


def event_time(value: Any) -> int | None:
    """Milliseconds since the epoch from a number (already ms since the epoch) or an ISO 8601 text (a date or a
    date and time; without a zone: UTC); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if math.isfinite(value) and 0 <= value < 2**62 else None
    if isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return int(moment.timestamp() * 1000)
    return None


def unpublished_times(
    directory: Path, deployment: str, start: int, time_field: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The times (ms, sorted; see `event_times`) of `deployment`'s requests logged at or after `start` that sit
    in the replicas' request-log `directory` but are not published yet (open segments, flushed every 200 ms, and
    sealed segments waiting for their publish): all of them, and those in files a running replica holds. A
    monitor holds back a window while a running replica still holds requests of it; a dead replica's files wait
    for the next replica that starts on the directory to recover them, and do not hold windows back."""
    from loopml.serving import read_open_segment

    every: list[np.ndarray] = []
    held: list[np.ndarray] = []
    if not directory.is_dir():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # open segments first: a record moves open -> sealed -> published (registered before the file goes), so
    # reading in that order, and the registered segments last, sees every record at least once
    for path in sorted(directory.glob("segment-*.open")):
        live = _held(path)
        try:
            columns, _torn = read_open_segment(path)
        except FileNotFoundError:  # sealed since it was listed: it is a Parquet file now, or published
            continue
        if not columns["time_ms"]:
            continue
        tail = pa.table({name: columns[name] for name in ("deployment", "time_ms", "inputs")})
        keep = pc.and_(pc.equal(tail["deployment"], deployment), pc.greater_equal(tail["time_ms"], start))
        times = event_times(tail.filter(keep), time_field)
        every.append(times)
        if live:
            held.append(times)
    for path in sorted(directory.glob("segment-*.parquet")):
        live = _held(path)
        try:
            table = pq.read_table(path, columns=["deployment", "time_ms", "inputs"])
        except (FileNotFoundError, pa.ArrowInvalid):  # published (moved) since it was listed, or being written
            continue
        keep = pc.and_(pc.equal(table["deployment"], deployment), pc.greater_equal(table["time_ms"], start))
        times = event_times(table.filter(keep), time_field)
        every.append(times)
        if live:
            held.append(times)
    return _sorted(every), _sorted(held)


def _sorted(parts: list[np.ndarray]) -> np.ndarray:
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def _held(path: Path) -> bool:
    """Whether a running process holds `path` (the request log locks its files with `flock` while it owns them).
    The probe takes a shared lock for an instant, never the exclusive one a replica claims a file with."""
    if sys.platform == "win32":  # pragma: no cover - no flock; one replica per directory on Windows
        return True
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


_EMPTY = [
    ("request_id", pa.string()),
    ("time_ms", pa.int64()),
    ("model", pa.string()),
    ("version", pa.int64()),
    ("status", pa.int32()),
    ("inputs", pa.string()),
    ("outputs", pa.string()),
    ("probabilities", pa.string()),
]
_PROBABILITIES = "probabilities"


def _with_probabilities(table: pa.Table) -> pa.Table:
    """`table` with the `probabilities` column (null in segments logged before it existed)."""
    if _PROBABILITIES in table.column_names:
        return table
    return table.append_column(_PROBABILITIES, pa.nulls(table.num_rows, pa.string()))


@dataclass(frozen=True)
class Records:
    """The requests of one window, and their rows (a request may carry several rows) as a frame."""

    table: pa.Table

    @property
    def requests(self) -> int:
        return int(self.table.num_rows)

    def majority(self) -> tuple[str | None, int | None]:
        """The (model, version) that answered most requests."""
        if not self.requests:
            return None, None
        pairs = list(zip(self.table["model"].to_pylist(), self.table["version"].to_pylist(), strict=True))
        values, counts = np.unique(np.asarray([f"{m}\x00{v}" for m, v in pairs], dtype=object), return_counts=True)
        model, version = str(values[int(np.argmax(counts))]).split("\x00")
        return model, int(version)

    def status_rate(self, statuses: Sequence[int] | None = None, at_least: int | None = None) -> float:
        if not self.requests:
            return 0.0
        status = np.asarray(self.table["status"].to_pylist())
        hit = np.isin(status, list(statuses or ())) | (status >= at_least if at_least is not None else False)
        return float(np.mean(hit))

    def rows(self) -> Iterator[tuple[str, int, dict[str, list[Any]], list[Any]]]:
        """(request id, time, inputs as columns, outputs) per successful request."""
        for request_id, time_ms, status, inputs, outputs in zip(
            self.table["request_id"].to_pylist(),
            self.table["time_ms"].to_pylist(),
            self.table["status"].to_pylist(),
            self.table["inputs"].to_pylist(),
            self.table["outputs"].to_pylist(),
            strict=True,
        ):
            if status >= 400:
                continue
            columns = orjson.loads(inputs)
            answers = orjson.loads(outputs)
            if isinstance(columns, dict) and isinstance(answers, list):
                yield request_id, time_ms, columns, answers

    def probabilities(self) -> dict[str, tuple[list[Any], list[list[float]]]]:
        """(classes, one list of probabilities per row) of each request answered with class probabilities."""
        found: dict[str, tuple[list[Any], list[list[float]]]] = {}
        if _PROBABILITIES not in self.table.column_names:
            return found
        for request_id, text in zip(
            self.table["request_id"].to_pylist(), self.table[_PROBABILITIES].to_pylist(), strict=True
        ):
            if text is None:
                continue
            logged = orjson.loads(text)
            if isinstance(logged, dict) and isinstance(logged.get("classes"), list):
                found[request_id] = (logged["classes"], logged.get("rows") or [])
        return found

    def frame(self, prediction_column: str) -> tuple[pd.DataFrame, list[tuple[str, int, int]]]:
        """The inputs as one frame plus the prediction column (the predicted value, or the argmax index when the
        model answered class probabilities), and (request id, row within the request, time) per row."""
        parts: dict[str, list[Any]] = {}
        keys: list[tuple[str, int, int]] = []
        predictions: list[Any] = []
        filled = 0
        for request_id, time_ms, columns, answers in self.rows():
            n = len(answers)
            if any(not isinstance(v, list) or len(v) != n for v in columns.values()):
                continue
            for name, values in columns.items():
                parts.setdefault(name, [None] * filled).extend(values)
            filled += n
            for values in parts.values():
                values.extend([None] * (filled - len(values)))
            predictions.extend(_predicted(a) for a in answers)
            keys.extend((request_id, i, time_ms) for i in range(n))
        frame = pd.DataFrame(parts)
        frame[prediction_column] = pd.Series(predictions, dtype="object" if _mixed(predictions) else None)
        return frame, keys


def _predicted(answer: Any) -> Any:
    if isinstance(answer, list) and answer and all(isinstance(v, int | float) for v in answer):
        return int(np.argmax(answer))
    return answer


def _mixed(values: list[Any]) -> bool:
    return len({type(v) for v in values}) > 1
