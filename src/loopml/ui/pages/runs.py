"""The runs table of an experiment: the search language (the API's filter and order-by), a column chooser over
params, metrics and tags, and pages of runs (one indexed query per page, fast at 100,000 runs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from loopml.domain.paging import decode_page_token, encode_page_token
from loopml.tracking import TrackingService
from loopml.ui.framework import Session, UiRoute, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

DEFAULT_COLUMNS_PER_KIND = 8
MAX_PER_PAGE = 1000


def split_order_by(text: str) -> list[str]:
    """`metrics.rmse ASC, params.`a,b` DESC` -> its items: commas inside backquotes belong to the name."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == "`":
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item]


def column_key(column: str) -> tuple[str, str] | None:
    kind, _, key = column.partition(".")
    return (kind, key) if kind in ("params", "metrics", "tags") and key else None


@router.get("/experiments/{experiment_id}")
def runs(
    request: Request,
    session: Session,
    experiment_id: int,
    filter: str = "",
    order_by: str = "",
    columns: Annotated[list[str] | None, Query(alias="col")] = None,
    page_token: str | None = None,
    per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 100,
) -> Response:
    tracking: TrackingService = request.app.state.tracking
    experiment = tracking.get_experiment(session.principal, experiment_id)
    page = tracking.search_runs(
        session.principal,
        [experiment_id],
        filter=filter or None,
        order_by=split_order_by(order_by),
        max_results=per_page,
        page_token=page_token or None,
    )
    available: dict[str, set[str]] = {"metrics": set(), "params": set(), "tags": set()}
    for run in page.items:
        available["metrics"].update(run.metrics)
        available["params"].update(run.params)
        available["tags"].update(k for k in run.tags if not k.startswith(("loopml.", "mlflow.")))
    chosen = [c for c in dict.fromkeys(columns or ()) if column_key(c) is not None]
    if not chosen:
        chosen = [f"metrics.{k}" for k in sorted(available["metrics"])[:DEFAULT_COLUMNS_PER_KIND]]
        chosen += [f"params.{k}" for k in sorted(available["params"])[:DEFAULT_COLUMNS_PER_KIND]]
    offset = decode_page_token(page_token or None)
    previous = None
    if offset > 0:
        previous = encode_page_token(max(0, offset - per_page)) if offset - per_page > 0 else ""
    return render(
        request,
        session,
        "runs.html",
        experiment=experiment,
        runs=page.items,
        next_token=page.next_page_token,
        previous_token=previous,
        first_row=offset + 1,
        filter=filter,
        order_by=order_by,
        per_page=per_page,
        chosen=[(c, *column_key(c)) for c in chosen],  # type: ignore[misc]
        available={kind: sorted(keys) for kind, keys in available.items()},
    )
