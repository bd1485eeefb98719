"""Monitors over live traffic: their windows, feedback labels, alerts and registered request-log segments."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

ALERT_KINDS = ("drift", "prediction_drift", "metric_drop", "error_rate", "contract")
"""What an alert rule can watch: the dataset drift verdict, drift of the predictions, a realised metric more
than `metric_drop` (relative) below the registration metric, the error rate, contract violations."""


@dataclass(frozen=True, slots=True)
class Monitor:
    """A monitor of one deployment: tumbling windows by time or by count, alert rules with hysteresis."""

    name: str
    deployment: str
    model: str | None
    version: int | None
    """The model version whose reference profile windows are compared with; None: the version that answered
    most of the window's requests."""
    window_seconds: int | None
    window_rows: int | None
    label_delay_seconds: int
    consecutive: int
    """k: an alert opens only after k consecutive breaching windows."""
    thresholds: dict[str, float]
    webhook: str | None
    kinds: tuple[str, ...]
    options: dict[str, Any]
    created_at: int
    created_by: str
    last_run_at: int | None = None


@dataclass(frozen=True, slots=True)
class MonitorWindow:
    """The results of one window: drift (a `DriftReport` as a dict), realised performance (None until the
    label delay after the window has passed) and, per rule kind, whether it breached (None: not evaluated)."""

    monitor: str
    start_time: int
    end_time: int
    rows: int
    labelled_rows: int
    model: str | None
    version: int | None
    drift: dict[str, Any] | None
    performance: dict[str, Any] | None
    breaches: dict[str, bool | None]
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    monitor: str
    kind: str
    dedupe_key: str
    state: str
    """"open" or "resolved"."""
    first_window: int
    last_window: int
    details: dict[str, Any]
    opened_at: int
    resolved_at: int | None
    delivered: bool
    """True when the webhook acknowledged the alert's current state (always False without a webhook)."""
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class LogSegment:
    """A sealed request-log segment registered in the metadata store; its bytes are the blob `sha256`."""

    sha256: str
    name: str
    deployments: tuple[str, ...]
    min_time: int
    max_time: int
    rows: int
    size: int
    created_at: int


@dataclass(frozen=True, slots=True)
class Feedback:
    """A ground-truth label for a logged prediction, by request id or by business key (exactly one)."""

    label: Any
    request_id: str | None = None
    key: str | None = None
    time_ms: int | None = None
    """When the truth became known (defaults to when it was received)."""


# -- the JSON wire format (REST bodies; the HTTP client rebuilds the same objects) ---------------------------


def monitor_to_json(monitor: Monitor) -> dict[str, Any]:
    return {**asdict(monitor), "kinds": list(monitor.kinds)}


def monitor_from_json(data: dict[str, Any]) -> Monitor:
    return Monitor(**{**data, "kinds": tuple(data["kinds"])})


def window_to_json(window: MonitorWindow) -> dict[str, Any]:
    return asdict(window)


def window_from_json(data: dict[str, Any]) -> MonitorWindow:
    return MonitorWindow(**data)


def alert_to_json(alert: Alert) -> dict[str, Any]:
    return asdict(alert)


def alert_from_json(data: dict[str, Any]) -> Alert:
    return Alert(**data)
