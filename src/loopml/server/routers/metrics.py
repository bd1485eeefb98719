"""Metric points: columnar batch ingest (the hot path) and the full history of one key.

Ingest skips pydantic: the body is read under `max_request_bytes`, parsed with orjson, turned into
metric columns and stored in one transaction off the event loop. `{"stored": n}` is sent only after that
transaction committed, so a 200 is the acknowledgement that nothing will be lost. A batch sent with an
`Idempotency-Key` header is stored at most once, however often it is sent.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from loopml.domain import MetricColumns
from loopml.domain.wire import decode_float, metric_to_json
from loopml.errors import InvalidInput, InvalidMetric, PayloadTooLarge
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import ServerSettings, Tracking
from loopml.server.fields import INT64, Integer, Key, Number
from loopml.server.json_body import read_json
from loopml.server.responses import OrjsonResponse

router = APIRouter(tags=["metrics"])

MAX_POINTS = 100_000
IDEMPOTENCY_KEY = "Idempotency-Key"
"""Optional request header naming the batch: a batch the run already applied under that key is not stored
again, and the answer is the same `{"stored": n}`, so a client may resend a batch whose answer it lost."""
_COLUMNS = ("keys", "values", "steps", "timestamps")


class MetricBatch(BaseModel):
    """The columnar body of `POST /runs/{run_id}/metrics` (documentation only: ingest parses by hand)."""

    model_config = ConfigDict(extra="forbid")

    keys: Annotated[list[Key], Field(max_length=MAX_POINTS)]
    values: Annotated[list[Number | Literal["NaN", "Infinity", "-Infinity"]], Field(max_length=MAX_POINTS)]
    steps: Annotated[list[Annotated[Integer, Field(ge=-INT64, le=INT64)]], Field(max_length=MAX_POINTS)]
    timestamps: Annotated[list[Annotated[Integer, Field(ge=0, le=INT64)]], Field(max_length=MAX_POINTS)]


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
    if values and set(map(type, values)) != {float}:  # ints, and "NaN"/"Infinity"/"-Infinity" strings
        decoded = []
        for i, raw in enumerate(values):
            try:
                decoded.append(raw if raw.__class__ is float else decode_float(raw))
            except (TypeError, ValueError) as exc:
                raise InvalidMetric(f"values[{i}]: {exc}") from None
        values = decoded
    return MetricColumns(keys, values, steps, timestamps)


@router.post(
    "/runs/{run_id}/metrics",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": MetricBatch.model_json_schema()}},
        },
        "parameters": [
            {
                "name": IDEMPOTENCY_KEY,
                "in": "header",
                "required": False,
                "description": "names the batch: sent again, it is stored once (1 to 64 of A-Z a-z 0-9 _ - . :)",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"},
            }
        ],
    },
)
async def log_metrics(
    run_id: str, request: Request, principal: CurrentPrincipal, tracking: Tracking, settings: ServerSettings
) -> dict[str, int]:
    body = await read_json(request, settings.max_request_bytes)
    points = _columns(body)
    batch_key = request.headers.get(IDEMPOTENCY_KEY)
    stored = await run_in_threadpool(tracking.log_metrics, principal, run_id, points, batch_key)
    return {"stored": stored}


@router.get("/runs/{run_id}/metrics/{key:path}")
def metric_history(run_id: str, key: str, principal: CurrentPrincipal, tracking: Tracking) -> OrjsonResponse:
    # Encoded by orjson as it is: FastAPI's own encoder walks every point in Python first (8 s for a
    # million points, 90% of the read).
    return OrjsonResponse({"metrics": [metric_to_json(m) for m in tracking.metric_history(principal, run_id, key)]})
