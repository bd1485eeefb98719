"""The experiments the user may see."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from loopml.tracking import TrackingService
from loopml.ui.framework import Session, UiRoute, render

router = APIRouter(route_class=UiRoute, include_in_schema=False)


@router.get("/experiments")
def experiments(request: Request, session: Session, show: str = "live") -> Response:
    tracking: TrackingService = request.app.state.tracking
    deleted = {"live": False, "deleted": True, "all": None}.get(show, False)
    found = tracking.list_experiments(session.principal, deleted=deleted)
    return render(request, session, "experiments.html", experiments=found, show=show)
