"""Metric points: the columnar batch ingest (the hot path of the operation table).

Ingest skips pydantic: the body is read under `max_request_bytes`, parsed with orjson, turned into
metric columns and stored in one transaction off the event loop. `{"stored": n}` is sent only after that
transaction committed, so a 200 is the acknowledgement that nothing will be lost. A batch sent with an
`Idempotency-Key` header is stored at most once, however often it is sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from loopml.api.tracking import LOG_METRICS, MAX_POINTS, MetricBatch
from loopml.domain import MetricColumns
from loopml.domain.wire import decode_float
from loopml.errors import InvalidInput, InvalidMetric, PayloadTooLarge
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import ServerSettings, Tracking
from loopml.server.json_body import read_json
from loopml.server.routes import Custom

IDEMPOTENCY_KEY = "Idempotency-Key"
"""Optional request header naming the batch: a batch the run already applied under that key is not stored
again, and the answer is the same `{"stored": n}`, so a client may resend a batch whose answer it lost."""
_COLUMNS = ("keys", "values", "steps", "timestamps")


def _columns(body: Any) -> MetricColumns:
    if not isinstance(body, dict):
        raise InvalidInput(f"the body must be a JSON object with {', '.join(_COLUMNS)}")
    unknown = sorted(set(body) - set(_COLUMNS))
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(_COLUMNS)}")
    columns = []
    for name in _COLUMNS:
        column = body.get(name)
        if not isinstance(column, list):
            raise InvalidInput(f"{name} must be a list, got {type(column).__name__ if name in body else 'nothing'}")
        columns.append(column)
    keys, values, steps, timestamps = columns
    lengths = {name: len(c) for name, c in zip(_COLUMNS, columns, strict=True)}
    if len(set(lengths.values())) != 1:
        raise InvalidInput(
            "keys, values, steps and timestamps must have equal lengths, got "
            + ", ".join(f"{name}={n}" for name, n in lengths.items())
        )
    if len(keys) > MAX_POINTS:
        raise PayloadTooLarge(f"{len(keys)} points in one request; send at most {MAX_POINTS} per request")
    if not all(v.__class__ is float for v in values):  # ints, and "NaN"/"Infinity"/"-Infinity" strings
        decoded = []
        for i, raw in enumerate(values):
            try:
                decoded.append(raw if raw.__class__ is float else decode_float(raw))
            except (TypeError, ValueError) as exc:
                raise InvalidMetric(f"values[{i}]: {exc}") from None
        values = decoded
    return MetricColumns(keys, values, steps, timestamps)


async def log_metrics(
    run_id: str, request: Request, principal: CurrentPrincipal, tracking: Tracking, settings: ServerSettings
) -> dict[str, int]:
    body = await read_json(request, settings.max_request_bytes)
    points = _columns(body)
    batch_key = request.headers.get(IDEMPOTENCY_KEY)
    stored = await run_in_threadpool(tracking.log_metrics, principal, run_id, points, batch_key)
    answer: dict[str, int] = LOG_METRICS.response.encode(stored, {})
    return answer


def _body_schema() -> dict[str, Any]:
    schema = MetricBatch.model_json_schema()
    schema["properties"].pop("run_id")  # in the path
    schema["required"].remove("run_id")
    return schema


ENDPOINTS = {
    "log_metrics": Custom(
        log_metrics,
        {
            "openapi_extra": {
                "requestBody": {"required": True, "content": {"application/json": {"schema": _body_schema()}}},
                "parameters": [
                    {
                        "name": IDEMPOTENCY_KEY,
                        "in": "header",
                        "required": False,
                        "description": "names the batch: sent again, it is stored once "
                        "(1 to 64 of A-Z a-z 0-9 _ - . :)",
                        "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"},
                    }
                ],
            }
        },
    )
}
"""The metric ingest hot path: parsed by hand, stored off the event loop."""
