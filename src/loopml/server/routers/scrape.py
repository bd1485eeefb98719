"""`GET /metrics`: the Prometheus exposition of the monitoring gauges (drift scores, realised model metrics).

It shows model metrics, so it needs a valid token (any role) unless `LOOPML_METRICS_PUBLIC=1`; Prometheus sends
one with `authorization: {credentials: <token>}` in its scrape config. A token scoped to a project sees only the
series of that project's deployments; a global token (or public mode) sees every series.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from loopml.monitoring import exposition
from loopml.server.auth import current_principal
from loopml.server.dependencies import Monitoring, ServerSettings

router = APIRouter(tags=["monitoring"])

_bearer = HTTPBearer(auto_error=False, description="an API token, `lml_...` (not needed with LOOPML_METRICS_PUBLIC=1)")


@router.get("/metrics", response_class=Response)
def scrape(
    request: Request,
    settings: ServerSettings,
    service: Monitoring,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    project = None if settings.metrics_public else current_principal(request, credentials).project
    return Response(exposition(service.store, project), media_type=CONTENT_TYPE_LATEST)
