"""Monitoring: monitors (create, list, get, run, windows, report), feedback labels, alerts, and the reference
profile of a model version."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from loopml.domain.monitoring import ALERT_KINDS, Feedback, alert_to_json, monitor_to_json, window_to_json
from loopml.monitoring import RunResult
from loopml.server.auth import CurrentPrincipal
from loopml.server.dependencies import Monitoring
from loopml.server.fields import INT32, Integer, Key, Millis, Name, Number, no_nul

router = APIRouter(tags=["monitoring"])

MonitorName = Annotated[str, Path(min_length=1, max_length=250), AfterValidator(no_nul)]
Duration = Annotated[str, Field(min_length=1, max_length=32)]


class CreateMonitor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    deployment: Name
    window: Duration = "1d"
    """`1d`, `6h`, `15m`: tumbling windows by time; a bare integer (`1000`): by count of requests."""
    label_delay: Duration = "0s"
    consecutive: Annotated[Integer, Field(ge=1, le=1000)] = 3
    model: Name | None = None
    version: Annotated[Integer, Field(ge=1, le=INT32)] | None = None
    thresholds: Annotated[dict[Key, Number], Field(max_length=20)] | None = None
    webhook: Annotated[str, Field(max_length=2000)] | None = None
    kinds: Annotated[list[Literal[ALERT_KINDS]], Field(max_length=10)] | None = None  # type: ignore[valid-type]
    options: Annotated[dict[Key, JsonValue], Field(max_length=20)] | None = None


class RunMonitor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    now: Millis | None = None
    """Evaluate as of this time (ms since the epoch); default: now."""


class BackfillRequests(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: Annotated[list[dict[Key, JsonValue]], Field(min_length=1, max_length=100_000)]
    """Past requests as request-log records: `request_id`, `time_ms`, `inputs`, `outputs` (and `model`,
    `version`, `status`)."""
    now: Millis | None = None


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: Name | None = None
    key: Name | None = None
    label: JsonValue
    time_ms: Millis | None = None


class FeedbackBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feedback: Annotated[list[FeedbackItem], Field(min_length=1, max_length=10_000)]


class ReferenceProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: dict[str, JsonValue]
    """A `loopml.data.Profile` as its JSON object (`Profile.to_dict()`)."""


@router.post("/monitors")
def create_monitor(body: CreateMonitor, principal: CurrentPrincipal, service: Monitoring) -> dict[str, Any]:
    monitor = service.create_monitor(
        principal,
        body.name,
        body.deployment,
        window=body.window,
        label_delay=body.label_delay,
        consecutive=body.consecutive,
        model=body.model,
        version=body.version,
        thresholds=body.thresholds,
        webhook=body.webhook,
        kinds=body.kinds,
        options=body.options,
    )
    return {"monitor": monitor_to_json(monitor)}


@router.get("/monitors")
def list_monitors(principal: CurrentPrincipal, service: Monitoring) -> dict[str, Any]:
    return {"monitors": [monitor_to_json(m) for m in service.list_monitors(principal)]}


@router.get("/monitors/{name}")
def get_monitor(name: MonitorName, principal: CurrentPrincipal, service: Monitoring) -> dict[str, Any]:
    return {"monitor": monitor_to_json(service.get_monitor(principal, name))}


@router.post("/monitors/{name}/run")
def run_monitor(
    name: MonitorName, principal: CurrentPrincipal, service: Monitoring, body: RunMonitor | None = None
) -> dict[str, Any]:
    result = service.run_monitor(principal, name, body.now if body else None)
    return _run_json(result)


@router.post("/monitors/{name}/backfill")
def backfill_monitor(
    name: MonitorName, principal: CurrentPrincipal, service: Monitoring, body: BackfillRequests
) -> dict[str, Any]:
    result = service.backfill(principal, name, body.requests, body.now)
    return _run_json(result)


def _run_json(result: RunResult) -> dict[str, Any]:
    return {
        "run": {
            "monitor": result.monitor,
            "windows": result.windows,
            "performance": result.performance,
            "opened": result.opened,
            "resolved": result.resolved,
            "delivered": result.delivered,
            "delivery_errors": result.delivery_errors,
            "pending": result.pending,
        }
    }


@router.get("/monitors/{name}/windows")
def monitor_windows(
    name: MonitorName,
    principal: CurrentPrincipal,
    service: Monitoring,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> dict[str, Any]:
    return {"windows": [window_to_json(w) for w in service.windows(principal, name, limit)]}


@router.get("/monitors/{name}/report", response_class=HTMLResponse)
def monitor_report(name: MonitorName, principal: CurrentPrincipal, service: Monitoring) -> HTMLResponse:
    return HTMLResponse(service.report_html(principal, name))


@router.post("/feedback")
def record_feedback(
    body: FeedbackBatch | FeedbackItem, principal: CurrentPrincipal, service: Monitoring
) -> dict[str, Any]:
    items = body.feedback if isinstance(body, FeedbackBatch) else [body]
    stored = service.record_feedback(
        principal, [Feedback(i.label, request_id=i.request_id, key=i.key, time_ms=i.time_ms) for i in items]
    )
    return {"recorded": stored}


@router.get("/alerts")
def list_alerts(
    principal: CurrentPrincipal,
    service: Monitoring,
    monitor: Annotated[str | None, Query(min_length=1, max_length=250), AfterValidator(no_nul)] = None,
    state: Annotated[Literal["open", "resolved"] | None, Query()] = None,
) -> dict[str, Any]:
    return {"alerts": [alert_to_json(a) for a in service.alerts(principal, monitor, state)]}


@router.put("/models/{name}/versions/{version}/reference-profile")
def set_reference_profile(
    name: Annotated[str, Path(min_length=1, max_length=250)],
    version: Annotated[int, Path(ge=1, le=INT32)],
    body: ReferenceProfile,
    principal: CurrentPrincipal,
    service: Monitoring,
) -> dict[str, Any]:
    profile = service.set_reference_profile(principal, name, version, body.profile)
    return {"profile": profile.to_dict()}


@router.get("/models/{name}/versions/{version}/reference-profile")
def get_reference_profile(
    name: Annotated[str, Path(min_length=1, max_length=250)],
    version: Annotated[int, Path(ge=1, le=INT32)],
    principal: CurrentPrincipal,
    service: Monitoring,
) -> dict[str, Any]:
    return {"profile": service.get_reference_profile(principal, name, version).to_dict()}
