"""MLflow's metric history endpoints: one run's history of a key (paged), and the sampled bulk view of many
runs that MLflow's charts ask for."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from loopml.domain import Metric, Principal
from loopml.domain.paging import decode_page_token, encode_page_token
from loopml.errors import InvalidInput
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Tracking
from loopml.server.mlflow.convert import metric_to_json
from loopml.server.mlflow.protocol import Message, MlflowResponse, MlflowRoute, read_message
from loopml.tracking import TrackingService

router = APIRouter(route_class=MlflowRoute, default_response_class=MlflowResponse)

MAX_HISTORY_PAGE = 25_000
MAX_BULK_RUNS = 100
MAX_BULK_RESULTS = 25_000


def _history(tracking: TrackingService, principal: Principal, message: Message) -> dict[str, Any]:
    run_id = message.string("run_id") or message.string("run_uuid")
    if not run_id:
        raise InvalidInput("Missing value for required parameter 'run_id'.")
    key = message.required_string("metric_key")
    max_results = message.int64("max_results")
    if max_results is not None and not 1 <= max_results <= MAX_HISTORY_PAGE:
        raise InvalidInput(f"max_results must be from 1 to {MAX_HISTORY_PAGE}, got {max_results}")
    points = tracking.metric_history(principal, run_id, key)
    answer: dict[str, Any] = {}
    if max_results is None and not message.string("page_token"):
        answer["metrics"] = [metric_to_json(p) for p in points]
        return answer
    offset = decode_page_token(message.string("page_token"))
    size = max_results or MAX_HISTORY_PAGE
    answer["metrics"] = [metric_to_json(p) for p in points[offset : offset + size]]
    if offset + size < len(points):
        answer["next_page_token"] = encode_page_token(offset + size)
    return answer


@router.get("/metrics/get-history")
async def get_metric_history(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    return await run_in_threadpool(_history, tracking, principal, message)


def _sample(points: list[Metric], limit: int) -> list[Metric]:
    """At most `limit` points spread evenly over the steps, always keeping the first and the last."""
    if len(points) <= limit:
        return points
    if limit == 1:
        return [points[-1]]
    last = len(points) - 1
    chosen = sorted({round(i * last / (limit - 1)) for i in range(limit)})
    return [points[i] for i in chosen]


def _bulk(tracking: TrackingService, principal: Principal, message: Message) -> dict[str, Any]:
    run_ids = message.strings("run_ids")
    if not run_ids:
        raise InvalidInput("Missing value for required parameter 'run_ids'.")
    if len(run_ids) > MAX_BULK_RUNS:
        raise InvalidInput(f"run_ids can name at most {MAX_BULK_RUNS} runs, got {len(run_ids)}")
    key = message.required_string("metric_key")
    start, end = message.int64("start_step"), message.int64("end_step")
    if (start is None) != (end is None):
        raise InvalidInput("start_step and end_step must be given together")
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"end_step ({end}) must be at least start_step ({start})")
    max_results = message.int64("max_results", default=MAX_BULK_RESULTS) or MAX_BULK_RESULTS
    if not 1 <= max_results <= MAX_BULK_RESULTS:
        raise InvalidInput(f"max_results must be from 1 to {MAX_BULK_RESULTS}, got {max_results}")
    metrics: list[dict[str, Any]] = []
    for run_id in dict.fromkeys(run_ids):
        points = tracking.metric_history(principal, run_id, key)
        if start is not None and end is not None:
            points = [p for p in points if start <= p.step <= end]
        metrics.extend({**metric_to_json(p), "run_id": run_id} for p in _sample(points, max_results))
    return {"metrics": metrics}


@router.get("/metrics/get-history-bulk-interval")
async def get_metric_history_bulk_interval(request: Request, principal: CurrentPrincipal, tracking: Tracking) -> Any:
    message = await read_message(request)
    return await run_in_threadpool(_bulk, tracking, principal, message)
