"""Pipelines: the runs, and one run's DAG with each step's state, its cache decision (and what the key was made
of), outputs, error and log."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from starlette.responses import Response

from loopml.domain import PipelineRunRecord, StepRun
from loopml.pipelines import PipelineService
from loopml.tracking import TrackingService
from loopml.ui.framework import Session, UiRoute, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)

NODE_W, NODE_H, GAP_X, GAP_Y = 170, 44, 60, 18
MAX_LOG_CHARS = 200_000


@dataclass(frozen=True)
class Node:
    step: StepRun
    x: int
    y: int


def _service(request: Request) -> PipelineService:
    tracking: TrackingService = request.app.state.tracking
    return PipelineService(tracking.store, tracking.artifacts, tracking.default_project)


def layout(steps: tuple[StepRun, ...]) -> tuple[list[Node], list[tuple[int, int, int, int]], int, int]:
    """Steps in columns by depth (a step sits right of everything it depends on), and the edges between them:
    (nodes, edges as x1, y1, x2, y2, width, height) for an SVG."""
    by_name = {s.step: s for s in steps}
    depth: dict[str, int] = {}

    def level(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name in depth:
            return depth[name]
        upstream = [u for u in by_name[name].upstream if u in by_name and u not in seen]
        found = 1 + max((level(u, seen | {name}) for u in upstream), default=-1)
        depth[name] = found
        return found

    rows: dict[int, int] = {}
    nodes: dict[str, Node] = {}
    for s in steps:
        column = level(s.step)
        row = rows.get(column, 0)
        rows[column] = row + 1
        nodes[s.step] = Node(s, 10 + column * (NODE_W + GAP_X), 10 + row * (NODE_H + GAP_Y))
    edges = [
        (nodes[u].x + NODE_W, nodes[u].y + NODE_H // 2, n.x, n.y + NODE_H // 2)
        for n in nodes.values()
        for u in n.step.upstream
        if u in nodes
    ]
    width = 20 + (max(depth.values(), default=0) + 1) * (NODE_W + GAP_X)
    height = 20 + max(rows.values(), default=1) * (NODE_H + GAP_Y) + NODE_H  # room for edges bent below
    return list(nodes.values()), edges, width, height


@router.get("/pipelines")
def pipelines(request: Request, session: Session, pipeline: str = "", status: str = "") -> Response:
    runs = _service(request).list_runs(session.principal, pipeline=pipeline or None, status=status or None, limit=200)
    return render(request, session, "pipelines.html", runs=runs, pipeline=pipeline, run_status=status)


@router.get("/pipelines/runs/{run_id}")
def pipeline_run(request: Request, session: Session, run_id: str, step: str | None = None) -> Response:
    service = _service(request)
    record: PipelineRunRecord = service.get_run(session.principal, run_id)
    nodes, edges, width, height = layout(record.steps)
    chosen = service.step_run(session.principal, run_id, step) if step else None
    log = service.step_log(session.principal, run_id, step)[-MAX_LOG_CHARS:] if step else ""
    return render(
        request,
        session,
        "pipeline_run.html",
        record=record,
        nodes=nodes,
        edges=edges,
        width=width,
        height=height,
        node_w=NODE_W,
        node_h=NODE_H,
        chosen=chosen,
        log=log,
    )
