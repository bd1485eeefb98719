"""Monitoring metadata: reference profiles, registered request-log segments, feedback labels, monitors, their
windows and alerts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Row, func, insert, select, update

from loopml.domain.monitoring import Alert, Feedback, LogSegment, Monitor, MonitorWindow
from loopml.errors import AlreadyExists, MonitorNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.schema import (
    alerts,
    feedback,
    monitor_windows,
    monitors,
    reference_profiles,
    request_log_segments,
)
from loopml.store.upsert import insert_if_missing, upsert

__all__ = ["MonitorRepository", "MonitoringDataRepository"]

_CHUNK = 500
"""Ids per IN (...) query: well under SQLite's and PostgreSQL's parameter limits."""


def _json(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


class MonitoringDataRepository:
    """What monitors read: reference profiles, segments of the request log, and feedback labels."""

    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    # -- reference profiles ----------------------------------------------------------------------------

    def put_reference_profile(self, model: str, version: int, profile_json: str) -> None:
        upsert(
            self._conn,
            reference_profiles,
            [
                {
                    "model": model,
                    "version": version,
                    "profile": profile_json,
                    "created_at": now_ms(),
                    "created_by": self._audit.actor,
                }
            ],
            keys=("model", "version"),
            update=("profile", "created_at", "created_by"),
        )
        self._audit.record(
            "model_version.set_reference_profile",
            "model_version",
            f"{model}/{version}",
            after={"bytes": len(profile_json)},
        )

    def reference_profile(self, model: str, version: int) -> str | None:
        return self._conn.execute(
            select(reference_profiles.c.profile).where(
                reference_profiles.c.model == model, reference_profiles.c.version == version
            )
        ).scalar_one_or_none()

    # -- request-log segments --------------------------------------------------------------------------

    def register_segment(self, segment: LogSegment) -> bool:
        """Record a segment once per sha256; True if this call registered it."""
        row = {
            "sha256": segment.sha256,
            "name": segment.name,
            "deployments": _json(list(segment.deployments)),
            "min_time": segment.min_time,
            "max_time": segment.max_time,
            "rows": segment.rows,
            "size": segment.size,
            "created_at": segment.created_at,
        }
        if not insert_if_missing(self._conn, request_log_segments, row, keys=("sha256",)):
            return False
        self._audit.record(
            "request_log.register_segment",
            "request_log_segment",
            segment.sha256,
            after={"deployments": list(segment.deployments), "rows": segment.rows},
        )
        return True

    def segments(self, deployment: str, start: int | None = None, end: int | None = None) -> list[LogSegment]:
        """Segments holding records of `deployment` that may overlap [start, end), oldest first."""
        query = select(request_log_segments).order_by(request_log_segments.c.min_time, request_log_segments.c.sha256)
        if start is not None:
            query = query.where(request_log_segments.c.max_time >= start)
        if end is not None:
            query = query.where(request_log_segments.c.min_time < end)
        found = [_segment(row) for row in self._conn.execute(query)]
        return [s for s in found if deployment in s.deployments]

    # -- feedback --------------------------------------------------------------------------------------

    def record_feedback(self, items: Sequence[Feedback], received_at: int, project: str = "") -> int:
        """Store labels of `project` ("" for labels every project's monitors may join)."""
        by_id = [i for i in items if i.request_id is not None]
        by_key = [i for i in items if i.request_id is None]
        for chosen, column in ((by_id, "request_id"), (by_key, "business_key")):
            rows = [
                {
                    "request_id": item.request_id,
                    "business_key": item.key,
                    "label": _json(item.label),
                    "label_time": received_at if item.time_ms is None else item.time_ms,
                    "received_at": received_at,
                    "project": project,
                }
                for item in chosen
            ]
            for start in range(0, len(rows), _CHUNK):
                upsert(
                    self._conn,
                    feedback,
                    rows[start : start + _CHUNK],
                    keys=("project", column),
                    update=("label", "label_time", "received_at"),
                )
        self._audit.record(
            "feedback.record", "feedback", "batch", after={"labels": len(items)}, project=project or None
        )
        return len(items)

    def labels_received_until(self) -> int:
        """When the newest label was received (ms; 0 without labels): a window whose performance was computed
        from the labels received until then has nothing new to read."""
        found = self._conn.execute(select(func.max(feedback.c.received_at))).scalar_one_or_none()
        return 0 if found is None else int(found)

    def labels(
        self, request_ids: Iterable[str] = (), keys: Iterable[str] = (), project: str = ""
    ) -> dict[str, tuple[Any, int]]:
        """Label and label time by request id, and by business key (as `key:<value>`): the labels of `project`
        and the global ones ("" project), a project's label winning over a global one for the same id."""
        found: dict[str, tuple[Any, int]] = {}
        for values, column, prefix in (
            (list(dict.fromkeys(request_ids)), feedback.c.request_id, ""),
            (list(dict.fromkeys(keys)), feedback.c.business_key, "key:"),
        ):
            for start in range(0, len(values), _CHUNK):
                query = (
                    select(column, feedback.c.label, feedback.c.label_time)
                    .where(column.in_(values[start : start + _CHUNK]), feedback.c.project.in_(["", project]))
                    .order_by(feedback.c.project)  # "" first: the project's own label is read last and wins
                )
                for row in self._conn.execute(query):
                    found[prefix + str(row[0])] = (orjson.loads(row.label), int(row.label_time))
        return found


def _segment(row: Row[Any]) -> LogSegment:
    return LogSegment(
        sha256=row.sha256,
        name=row.name,
        deployments=tuple(orjson.loads(row.deployments)),
        min_time=row.min_time,
        max_time=row.max_time,
        rows=row.rows,
        size=row.size,
        created_at=row.created_at,
    )


class MonitorRepository:
    """Monitors, the windows they computed, and the alerts they raised."""

    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def create(self, monitor: Monitor) -> Monitor:
        if self._conn.execute(select(monitors.c.id).where(monitors.c.name == monitor.name)).first() is not None:
            raise AlreadyExists(f"monitor {monitor.name!r} already exists")
        values = {
            "name": monitor.name,
            "deployment": monitor.deployment,
            "model": monitor.model,
            "version": monitor.version,
            "window_seconds": monitor.window_seconds,
            "window_rows": monitor.window_rows,
            "label_delay_seconds": monitor.label_delay_seconds,
            "consecutive": monitor.consecutive,
            "thresholds": _json(monitor.thresholds),
            "alerts": _json({"webhook": monitor.webhook, "kinds": list(monitor.kinds)}),
            "options": _json(monitor.options),
            "created_at": monitor.created_at,
            "created_by": monitor.created_by,
        }
        self._conn.execute(insert(monitors).values(**values))
        self._audit.record(
            "monitor.create",
            "monitor",
            monitor.name,
            after={k: v for k, v in values.items() if k not in ("created_at", "created_by")},
        )
        return self.get(monitor.name)

    def _id(self, name: str) -> int:
        found = self._conn.execute(select(monitors.c.id).where(monitors.c.name == name)).scalar_one_or_none()
        if found is None:
            raise MonitorNotFound(f"monitor {name!r} does not exist")
        return int(found)

    def get(self, name: str) -> Monitor:
        row = self._conn.execute(select(monitors).where(monitors.c.name == name)).one_or_none()
        if row is None:
            raise MonitorNotFound(f"monitor {name!r} does not exist")
        return _monitor(row)

    def all(self) -> list[Monitor]:
        return [_monitor(row) for row in self._conn.execute(select(monitors).order_by(monitors.c.name))]

    def lock(self, name: str) -> Monitor:
        """The monitor, its row locked until the transaction ends (one run of a monitor at a time)."""
        row = self._conn.execute(select(monitors).where(monitors.c.name == name).with_for_update()).one_or_none()
        if row is None:
            raise MonitorNotFound(f"monitor {name!r} does not exist")
        return _monitor(row)

    def mark_run(self, name: str, at: int, windows: int) -> None:
        self._conn.execute(update(monitors).where(monitors.c.name == name).values(last_run_at=at))
        self._audit.record("monitor.run", "monitor", name, after={"windows": windows})

    # -- windows ---------------------------------------------------------------------------------------

    def windows(self, name: str, limit: int | None = None) -> list[MonitorWindow]:
        """The monitor's windows, oldest first (the newest `limit` when given)."""
        query = select(monitor_windows).where(monitor_windows.c.monitor_id == self._id(name))
        if limit is not None:
            query = query.order_by(monitor_windows.c.start_time.desc()).limit(limit)
            rows = list(self._conn.execute(query))[::-1]
        else:
            rows = list(self._conn.execute(query.order_by(monitor_windows.c.start_time)))
        return [_window(name, row) for row in rows]

    def put_window(self, window: MonitorWindow) -> None:
        upsert(
            self._conn,
            monitor_windows,
            [
                {
                    "monitor_id": self._id(window.monitor),
                    "start_time": window.start_time,
                    "end_time": window.end_time,
                    "rows": window.rows,
                    "labelled_rows": window.labelled_rows,
                    "model": window.model,
                    "version": window.version,
                    "drift": None if window.drift is None else _json(window.drift),
                    "performance": None if window.performance is None else _json(window.performance),
                    "breaches": _json(window.breaches),
                    "created_at": window.created_at,
                    "updated_at": window.updated_at,
                }
            ],
            keys=("monitor_id", "start_time"),
            update=("end_time", "rows", "labelled_rows", "drift", "performance", "breaches", "updated_at"),
        )

    # -- alerts ----------------------------------------------------------------------------------------

    def alerts(self, name: str | None = None, state: str | None = None) -> list[Alert]:
        query = select(alerts, monitors.c.name.label("monitor")).join(monitors, monitors.c.id == alerts.c.monitor_id)
        if name is not None:
            query = query.where(monitors.c.name == name)
        if state is not None:
            query = query.where(alerts.c.state == state)
        return [_alert(row) for row in self._conn.execute(query.order_by(alerts.c.id))]

    def open_alert(self, name: str, kind: str, dedupe_key: str, window: int, details: Mapping[str, Any]) -> Alert:
        at = now_ms()
        values = {
            "monitor_id": self._id(name),
            "kind": kind,
            "dedupe_key": dedupe_key,
            "state": "open",
            "first_window": window,
            "last_window": window,
            "details": _json(details),
            "opened_at": at,
            "resolved_at": None,
            "delivered": False,
            "delivered_state": None,
            "attempts": 0,
            "last_error": None,
        }
        if not insert_if_missing(self._conn, alerts, values, keys=("dedupe_key",)):
            return self._alert_by_key(dedupe_key)
        self._audit.record("alert.open", "alert", dedupe_key, after={"monitor": name, "kind": kind, **details})
        return self._alert_by_key(dedupe_key)

    def update_alert(self, alert: Alert, last_window: int, details: Mapping[str, Any]) -> None:
        self._conn.execute(
            update(alerts).where(alerts.c.id == alert.id).values(last_window=last_window, details=_json(details))
        )

    def resolve_alert(self, alert: Alert, window: int) -> None:
        self._conn.execute(
            update(alerts)
            .where(alerts.c.id == alert.id)
            .values(state="resolved", resolved_at=now_ms(), last_window=window, delivered=False)
        )
        self._audit.record("alert.resolve", "alert", alert.dedupe_key, after={"window": window})

    def record_delivery(self, alert: Alert, error: str | None) -> None:
        """Record a webhook attempt for the alert's current state: acknowledged (`error` None) or failed."""
        current = self._conn.execute(select(alerts.c.attempts).where(alerts.c.id == alert.id)).scalar_one()
        values: dict[str, Any] = {"attempts": int(current) + 1, "last_error": error}
        if error is None:
            values.update(delivered=True, delivered_state=alert.state)
        self._conn.execute(update(alerts).where(alerts.c.id == alert.id).values(**values))
        self._audit.record(
            "alert.deliver",
            "alert",
            alert.dedupe_key,
            after={"state": alert.state, "ok": error is None, "error": error},
        )

    def _alert_by_key(self, dedupe_key: str) -> Alert:
        query = (
            select(alerts, monitors.c.name.label("monitor"))
            .join(monitors, monitors.c.id == alerts.c.monitor_id)
            .where(alerts.c.dedupe_key == dedupe_key)
        )
        return _alert(self._conn.execute(query).one())


def _monitor(row: Row[Any]) -> Monitor:
    rules = orjson.loads(row.alerts)
    return Monitor(
        name=row.name,
        deployment=row.deployment,
        model=row.model,
        version=row.version,
        window_seconds=row.window_seconds,
        window_rows=row.window_rows,
        label_delay_seconds=row.label_delay_seconds,
        consecutive=row.consecutive,
        thresholds=orjson.loads(row.thresholds),
        webhook=rules.get("webhook"),
        kinds=tuple(rules.get("kinds") or ()),
        options=orjson.loads(row.options),
        created_at=row.created_at,
        created_by=row.created_by,
        last_run_at=row.last_run_at,
    )


def _window(name: str, row: Row[Any]) -> MonitorWindow:
    return MonitorWindow(
        monitor=name,
        start_time=row.start_time,
        end_time=row.end_time,
        rows=row.rows,
        labelled_rows=row.labelled_rows,
        model=row.model,
        version=row.version,
        drift=None if row.drift is None else orjson.loads(row.drift),
        performance=None if row.performance is None else orjson.loads(row.performance),
        breaches=orjson.loads(row.breaches),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _alert(row: Row[Any]) -> Alert:
    return Alert(
        id=row.id,
        monitor=row.monitor,
        kind=row.kind,
        dedupe_key=row.dedupe_key,
        state=row.state,
        first_window=row.first_window,
        last_window=row.last_window,
        details=orjson.loads(row.details),
        opened_at=row.opened_at,
        resolved_at=row.resolved_at,
        delivered=bool(row.delivered),
        attempts=row.attempts,
        last_error=row.last_error,
    )
