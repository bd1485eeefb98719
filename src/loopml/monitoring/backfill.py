"""Backfill input: files of past requests and labels (Parquet or CSV) turned into what `loopml monitor
backfill` and `client.monitors.backfill` send (request-log records and feedback items), and those records into
the table `MonitoringService.backfill` computes windows from, encoded as the request log encodes them.

A requests file has one row per request: the model's answer in the prediction column (`prediction` unless
told otherwise), every other column an input, except these reserved ones: `request_id` (default: `row-<n>`),
`time_ms` (when it was served, ms since the epoch; default: the event time of the monitor's `time_field`),
`model`, `version` (default: the monitor's pinned version) and `status` (default 200). A labels file has
`label` and one of `request_id` or `key` per row, and optionally `time_ms`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa

from loopml.domain.monitoring import Monitor
from loopml.errors import InvalidInput
from loopml.monitoring.windows import event_time

__all__ = ["read_backfill_labels", "read_backfill_requests", "requests_table"]

RESERVED = ("request_id", "time_ms", "model", "version", "status")
_REQUEST_FIELDS = frozenset({"request_id", "time_ms", "model", "version", "status", "inputs", "outputs"})
_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
"""As the request log writes inputs and outputs (`loopml.serving.segments`), so a backfill reads the same."""


def read_backfill_requests(
    source: str | Path | pd.DataFrame, *, prediction_column: str = "prediction", time_column: str | None = None
) -> list[dict[str, Any]]:
    """The requests of a file (or frame) as request-log records; see the module docstring."""
    frame = _frame(source)
    name = _name(source)
    if prediction_column not in frame.columns:
        raise InvalidInput(
            f"{name}: no {prediction_column!r} column with the model's answers; name it with --prediction-column"
        )
    features = [c for c in frame.columns if c not in RESERVED and c != prediction_column]
    columns = {c: _values(frame[c]) for c in [*features, prediction_column]}
    n = len(frame)
    ids = [str(v) for v in frame["request_id"]] if "request_id" in frame.columns else [f"row-{i}" for i in range(n)]
    if "time_ms" in frame.columns:
        times = [_integer(v, name, "time_ms", i) for i, v in enumerate(frame["time_ms"].tolist())]
    elif time_column is not None and time_column in frame.columns:
        times = [_time(v, name, time_column, i) for i, v in enumerate(columns[time_column])]
    else:
        raise InvalidInput(f"{name}: no time_ms column (when each request was served, ms since the epoch)")
    extra = {c: frame[c].tolist() for c in ("model", "status") if c in frame.columns}
    versions = [_integer(v, name, "version", i) for i, v in enumerate(frame["version"])] if "version" in frame else None
    requests: list[dict[str, Any]] = []
    for i in range(n):
        request: dict[str, Any] = {
            "request_id": ids[i],
            "time_ms": times[i],
            "inputs": {c: [columns[c][i]] for c in features},
            "outputs": [columns[prediction_column][i]],
        }
        if "model" in extra:
            request["model"] = str(extra["model"][i])
        if versions is not None:
            request["version"] = versions[i]
        if "status" in extra:
            request["status"] = _integer(extra["status"][i], name, "status", i)
        requests.append(request)
    return requests


def read_backfill_labels(source: str | Path | pd.DataFrame) -> list[dict[str, Any]]:
    """The labels of a file (or frame) as feedback items; rows without a label are left out."""
    frame = _frame(source)
    name = _name(source)
    if "label" not in frame.columns or not {"request_id", "key"} & set(frame.columns):
        raise InvalidInput(f"{name}: a labels file needs a label column and a request_id or key column")
    by = "request_id" if "request_id" in frame.columns else "key"
    labels = _values(frame["label"])
    items = []
    for i, (ref, label) in enumerate(zip(frame[by].tolist(), labels, strict=True)):
        if label is None:
            continue
        item: dict[str, Any] = {by: str(ref), "label": label}
        if "time_ms" in frame.columns:
            item["time_ms"] = _integer(frame["time_ms"].iloc[i], name, "time_ms", i)
        items.append(item)
    return items


def requests_table(monitor: Monitor, requests: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Backfill requests as request-log records (inputs and outputs as JSON text, like the serving replicas)."""
    columns: dict[str, list[Any]] = {name: [] for name in ("request_id", "time_ms", "model", "version", "status")}
    texts: dict[str, list[str]] = {"inputs": [], "outputs": []}
    for i, request in enumerate(requests):
        if not isinstance(request, Mapping):
            raise InvalidInput(f"requests[{i}] must be an object")
        unknown = sorted(set(request) - _REQUEST_FIELDS)
        if unknown:
            raise InvalidInput(
                f"requests[{i}] has unknown fields {unknown}; known: {', '.join(sorted(_REQUEST_FIELDS))}"
            )
        request_id, time_ms = request.get("request_id"), request.get("time_ms")
        if not isinstance(request_id, str) or not 1 <= len(request_id) <= 250 or "\x00" in request_id:
            raise InvalidInput(f"requests[{i}].request_id must be a string of 1 to 250 characters")
        if isinstance(time_ms, bool) or not isinstance(time_ms, int) or not 0 <= time_ms < 2**62:
            raise InvalidInput(f"requests[{i}].time_ms must be an integer (ms since the epoch)")
        model = request.get("model", monitor.model)
        version = request.get("version", monitor.version if model == monitor.model else None)
        if not isinstance(model, str) or isinstance(version, bool) or not isinstance(version, int):
            raise InvalidInput(
                f"requests[{i}] names no model version: give model and version, or pin the monitor to one"
            )
        status = request.get("status", 200)
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise InvalidInput(f"requests[{i}].status must be an HTTP status code")
        inputs, outputs = request.get("inputs"), request.get("outputs")
        if not isinstance(inputs, Mapping) or not isinstance(outputs, list):
            raise InvalidInput(f"requests[{i}] needs inputs ({{column: [values]}}) and outputs (a list)")
        for what, content in (("inputs", inputs), ("outputs", outputs)):
            try:
                texts[what].append(orjson.dumps(content, option=_JSON_OPTIONS).decode())
            except (TypeError, orjson.JSONEncodeError) as exc:
                raise InvalidInput(f"requests[{i}].{what} must be plain JSON: {exc}") from None
        columns["request_id"].append(request_id)
        columns["time_ms"].append(time_ms)
        columns["model"].append(model)
        columns["version"].append(version)
        columns["status"].append(status)
    return pa.table(
        {
            "request_id": pa.array(columns["request_id"], pa.string()),
            "time_ms": pa.array(columns["time_ms"], pa.int64()),
            "model": pa.array(columns["model"], pa.string()),
            "version": pa.array(columns["version"], pa.int64()),
            "status": pa.array(columns["status"], pa.int32()),
            "inputs": pa.array(texts["inputs"], pa.string()),
            "outputs": pa.array(texts["outputs"], pa.string()),
        }
    )


def _frame(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True)
    path = Path(source)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path)
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except (ValueError, OSError) as exc:
        raise InvalidInput(f"{path}: cannot be read: {exc}") from None
    raise InvalidInput(f"{path}: a backfill file must be .parquet or .csv")


def _name(source: str | Path | pd.DataFrame) -> str:
    return "the frame" if isinstance(source, pd.DataFrame) else str(source)


def _values(series: pd.Series) -> list[Any]:
    """Python values as the request log writes them: datetimes as ISO 8601 text, missing values as None."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return [None if pd.isna(v) else v.isoformat() for v in series]
    values = series.astype(object).where(series.notna(), None).tolist()
    return [v.item() if hasattr(v, "item") else v for v in values]


def _integer(value: Any, name: str, column: str, row: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number.is_integer():
        raise InvalidInput(f"{name}: row {row}: {column} must be a whole number, got {value!r}")
    return int(number)


def _time(value: Any, name: str, column: str, row: int) -> int:
    found = event_time(value)
    if found is None:
        raise InvalidInput(f"{name}: row {row}: {column} is not a time (ms since the epoch, or ISO 8601 text)")
    return found
