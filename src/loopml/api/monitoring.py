"""Monitoring operations: reference profiles of model versions, monitors (create, list, get, run, backfill,
windows, report), feedback labels and alerts."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, JsonValue, model_validator

from loopml.api.codecs import html, listed, one, raw
from loopml.api.fields import INT32, Integer, Key, Millis, Name, Number, no_nul
from loopml.api.governance import NoArguments
from loopml.api.operation import Operation, Request
from loopml.api.registry import MODEL, ModelName, VersionNumber
from loopml.domain.monitoring import (
    ALERT_KINDS,
    Alert,
    Feedback,
    Monitor,
    MonitorWindow,
    alert_from_json,
    alert_to_json,
    monitor_from_json,
    monitor_to_json,
    window_from_json,
    window_to_json,
)

MonitorName = Annotated[str, Field(min_length=1, max_length=250), AfterValidator(no_nul)]
Duration = Annotated[str, Field(min_length=1, max_length=32)]

MONITOR = "monitor -> deployment's project"


class SetReferenceProfile(Request):
    model: Annotated[ModelName, Field(alias="name")]
    version: VersionNumber
    profile: dict[str, JsonValue]
    """A `loopml.data.Profile` as its JSON object (`Profile.to_dict()`)."""


class ReferenceProfilePath(Request):
    model: Annotated[ModelName, Field(alias="name")]
    version: VersionNumber


class CreateMonitor(Request):
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


class MonitorPath(Request):
    name: MonitorName


class RunMonitor(Request):
    body_required = False

    name: MonitorName
    now: Millis | None = None
    """Evaluate as of this time (ms since the epoch); default: now."""


class Backfill(Request):
    name: MonitorName
    requests: Annotated[list[dict[Key, JsonValue]], Field(min_length=1, max_length=100_000)]
    """Past requests as request-log records: `request_id`, `time_ms`, `inputs`, `outputs` (and `model`,
    `version`, `status`)."""
    now: Millis | None = None


class MonitorWindows(Request):
    name: MonitorName
    limit: Annotated[int, Field(ge=1, le=100_000)] | None = None


class FeedbackItem(Request):
    request_id: Name | None = None
    key: Name | None = None
    label: JsonValue
    time_ms: Millis | None = None


class RecordFeedback(Request):
    """`{"feedback": [label, ...]}`, or one label as the whole body."""

    items: Annotated[list[FeedbackItem], Field(alias="feedback", min_length=1, max_length=10_000)]

    @model_validator(mode="before")
    @classmethod
    def _one_label(cls, data: Any) -> Any:
        if isinstance(data, dict) and "feedback" not in data:
            return {"feedback": [data]}
        return data

    def arguments(self) -> dict[str, Any]:
        items = [Feedback(i.label, request_id=i.request_id, key=i.key, time_ms=i.time_ms) for i in self.items]
        return {"items": items}


class ListAlerts(Request):
    monitor: Annotated[str, Field(min_length=1, max_length=250), AfterValidator(no_nul)] | None = None
    state: Literal["open", "resolved"] | None = None


def _profile(profile: Any) -> dict[str, Any]:
    as_dict: dict[str, Any] = profile.to_dict()
    return as_dict


def _run(result: Any) -> dict[str, Any]:
    return dataclasses.asdict(result)


_monitor = one("monitor", monitor_to_json, monitor_from_json)

SET_REFERENCE_PROFILE: Operation[dict[str, Any]] = Operation(
    "set_reference_profile", "monitoring", "set_reference_profile", "editor", "path", MODEL,
    "PUT", "/models/{name}/versions/{version}/reference-profile", SetReferenceProfile, raw("profile"), "monitoring",
    adapt=_profile,
)  # fmt: skip
GET_REFERENCE_PROFILE: Operation[dict[str, Any]] = Operation(
    "get_reference_profile", "monitoring", "get_reference_profile", "viewer", "path", MODEL,
    "GET", "/models/{name}/versions/{version}/reference-profile", ReferenceProfilePath, raw("profile"),
    "monitoring", adapt=_profile,
)  # fmt: skip
CREATE_MONITOR: Operation[Monitor] = Operation(
    "create_monitor", "monitoring", "create_monitor", "editor", "path", "body.deployment -> deployment's project",
    "POST", "/monitors", CreateMonitor, _monitor, "monitoring",
)  # fmt: skip
LIST_MONITORS: Operation[list[Monitor]] = Operation(
    "list_monitors", "monitoring", "list_monitors", "viewer", "listing", MONITOR, "GET", "/monitors", NoArguments,
    listed("monitors", monitor_to_json, monitor_from_json), "monitoring",
)  # fmt: skip
GET_MONITOR: Operation[Monitor] = Operation(
    "get_monitor", "monitoring", "get_monitor", "viewer", "path", MONITOR, "GET", "/monitors/{name}", MonitorPath,
    _monitor, "monitoring",
)  # fmt: skip
RUN_MONITOR: Operation[dict[str, Any]] = Operation(
    "run_monitor", "monitoring", "run_monitor", "editor", "path", MONITOR,
    "POST", "/monitors/{name}/run", RunMonitor, raw("run"), "monitoring", adapt=_run,
)  # fmt: skip
BACKFILL_MONITOR: Operation[dict[str, Any]] = Operation(
    "backfill_monitor", "monitoring", "backfill", "editor", "path", MONITOR,
    "POST", "/monitors/{name}/backfill", Backfill, raw("run"), "monitoring", adapt=_run,
)  # fmt: skip
MONITOR_WINDOWS: Operation[list[MonitorWindow]] = Operation(
    "monitor_windows", "monitoring", "windows", "viewer", "path", MONITOR,
    "GET", "/monitors/{name}/windows", MonitorWindows, listed("windows", window_to_json, window_from_json),
    "monitoring",
)  # fmt: skip
MONITOR_REPORT: Operation[str] = Operation(
    "monitor_report", "monitoring", "report_html", "viewer", "path", MONITOR,
    "GET", "/monitors/{name}/report", MonitorPath, html, "monitoring", summary="The self-contained HTML report",
)  # fmt: skip
RECORD_FEEDBACK: Operation[int] = Operation(
    "record_feedback", "monitoring", "record_feedback", "editor", "own", "the token's project",
    "POST", "/feedback", RecordFeedback, raw("recorded"), "monitoring",
)  # fmt: skip
LIST_ALERTS: Operation[list[Alert]] = Operation(
    "list_alerts", "monitoring", "alerts", "viewer", "listing", "alert -> monitor -> deployment's project",
    "GET", "/alerts", ListAlerts, listed("alerts", alert_to_json, alert_from_json), "monitoring",
)  # fmt: skip

OPERATIONS = (
    SET_REFERENCE_PROFILE,
    GET_REFERENCE_PROFILE,
    CREATE_MONITOR,
    LIST_MONITORS,
    GET_MONITOR,
    RUN_MONITOR,
    BACKFILL_MONITOR,
    MONITOR_WINDOWS,
    MONITOR_REPORT,
    RECORD_FEEDBACK,
    LIST_ALERTS,
)
