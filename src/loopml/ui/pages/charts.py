"""JSON for the charts: metric histories of up to 100 runs, downsampled per pixel column on the server."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from loopml.errors import InvalidInput
from loopml.tracking import TrackingService
from loopml.ui.downsample import downsample
from loopml.ui.framework import Session, UiRoute

router = APIRouter(route_class=UiRoute, include_in_schema=False)

MAX_RUNS = 100
MAX_POINTS = 4000


@router.get("/ui/data/metric-history")
def metric_history(
    request: Request,
    session: Session,
    key: str,
    runs: Annotated[list[str], Query(alias="run")],
    points: Annotated[int, Query(ge=10, le=MAX_POINTS)] = 800,
    lo: int | None = None,
    hi: int | None = None,
) -> Response:
    """`{"key", "runs": [{"id", "name", "steps", "values", "total", "skipped"}]}`: each run's history of `key`
    between steps `lo` and `hi`, at most `points` buckets (min and max of each)."""
    unique = list(dict.fromkeys(runs))
    if len(unique) > MAX_RUNS:
        raise InvalidInput(f"a chart shows at most {MAX_RUNS} runs, got {len(unique)}")
    tracking: TrackingService = request.app.state.tracking
    answer: list[dict[str, Any]] = []
    for run_id in unique:
        run = tracking.get_run(session.principal, run_id)
        steps, _, values = tracking.metric_history_arrays(session.principal, run_id, key)
        series = downsample(steps, values, points, lo, hi)
        answer.append(
            {
                "id": run.id,
                "name": run.name,
                "steps": series.steps,
                "values": series.values,
                "total": series.total,
                "skipped": series.skipped,
            }
        )
    return Response(
        orjson.dumps({"key": key, "runs": answer}, option=orjson.OPT_SERIALIZE_NUMPY), media_type="application/json"
    )
