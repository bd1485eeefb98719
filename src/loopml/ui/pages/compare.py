"""Compare runs: metric histories overlaid, a param against a metric as a scatter, and a diff of params."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from loopml.errors import InvalidInput
from loopml.tracking import TrackingService
from loopml.ui.framework import Session, UiRoute, render
from loopml.ui.pages.charts import MAX_RUNS

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@router.get("/compare")
def compare(
    request: Request,
    session: Session,
    runs: Annotated[list[str] | None, Query(alias="run")] = None,
    key: str | None = None,
    only_differences: bool = False,
) -> Response:
    chosen = list(dict.fromkeys(runs or ()))
    if not chosen:
        raise InvalidInput("select at least one run to compare (tick runs in an experiment's table)")
    if len(chosen) > MAX_RUNS:
        raise InvalidInput(f"compare at most {MAX_RUNS} runs at once, got {len(chosen)}")
    tracking: TrackingService = request.app.state.tracking
    found = [tracking.get_run(session.principal, run_id) for run_id in chosen]
    param_keys = sorted({k for run in found for k in run.params})
    metric_keys = sorted({k for run in found for k in run.metrics})
    rows = []
    for name in param_keys:
        values = [run.params.get(name) for run in found]
        differs = len(set(values)) > 1
        if differs or not only_differences:
            rows.append((name, values, differs))
    scatter: dict[str, Any] = {
        "runs": [{"id": r.id, "name": r.name, "params": r.params, "metrics": r.metrics} for r in found],
        "params": param_keys,
        "metrics": metric_keys,
    }
    return render(
        request,
        session,
        "compare.html",
        runs=found,
        key=key if key in metric_keys else (metric_keys[0] if metric_keys else None),
        metric_keys=metric_keys,
        param_rows=rows,
        only_differences=only_differences,
        scatter=scatter,
    )
