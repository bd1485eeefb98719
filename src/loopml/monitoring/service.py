"""The monitoring service: reference profiles of model versions, monitors over the request log, feedback labels,
realised performance, alerts with hysteresis, and the report.

A run of a monitor computes every complete window it has not computed yet (drift of the window's inputs and
predictions against the version's stored reference profile, error and contract-violation rates), fills in the
realised performance of windows whose label delay has passed, then opens, updates or resolves alerts and POSTs
them to the webhook. Runs are incremental and idempotent: running twice at the same `now` changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from loopml.artifacts import ArtifactStore
from loopml.data import Profile
from loopml.domain import Principal, Role
from loopml.domain.monitoring import ALERT_KINDS, Alert, Feedback, Monitor, MonitorWindow
from loopml.domain.validation import check_name
from loopml.errors import DeploymentNotFound, InvalidInput, LoopmlError, MonitorNotFound, NotFound
from loopml.monitoring.alerts import check_webhook_url, deliver, streaks, webhook_payload
from loopml.monitoring.backfill import requests_table
from loopml.monitoring.baselines import CHAMPION_ALIAS, check_baselines, replaced
from loopml.monitoring.drift import dataset_drift
from loopml.monitoring.performance import classification_metrics, infer_task, metric_drops, regression_metrics
from loopml.monitoring.windows import (
    Records,
    event_times,
    order_records,
    parse_duration,
    parse_window,
    read_records,
    unpublished_times,
)
from loopml.registry import RegistryService
from loopml.store import MetadataStore, Unit
from loopml.store.audit import now_ms

__all__ = ["DEFAULT_THRESHOLDS", "MAX_FEEDBACK", "MonitoringService", "RunResult"]

MAX_FEEDBACK = 10_000
"""Labels per feedback call."""
MAX_LABEL_BYTES = 64 * 1024
DEFAULT_THRESHOLDS: dict[str, float] = {
    "drift_share": 0.5,
    "metric_drop": 0.05,
    "error_rate": 0.05,
    "contract_violation_rate": 0.01,
    "min_rows": 30,
    "min_labels": 30,
}
"""`drift_share`: share of drifted features for dataset drift; `metric_drop`: relative drop below the
registration metric; `error_rate`: share of 5xx answers; `contract_violation_rate`: share of 400/422 answers
(inputs the serving contract refused); windows with fewer than `min_rows` requests (`min_labels` labelled
rows for performance) are recorded but not judged."""
OPTIONS = frozenset(
    {
        "task",
        "key_column",
        "prediction_column",
        "grace_seconds",
        "reference_metrics",
        "label_horizon",
        "baseline",
        "time_field",
        "positive_class",
    }
)
DEFAULT_LABEL_HORIZON_SECONDS = 7 * 86_400
"""How long after a window's end labels that arrive still update its performance, unless the monitor's
`label_horizon` option says otherwise (never shorter than the label delay)."""
CONTRACT_STATUSES = (400, 422)
MAX_WINDOWS_PER_RUN = 10_000
MAX_BACKFILL = 1_000_000
"""Requests per backfill call."""
_METRIC_KEYS = ("{}", "val_{}", "validation_{}", "test_{}")


@dataclass
class RunResult:
    """What one run did: windows computed, windows whose performance was filled in, alerts opened and resolved,
    webhook deliveries acknowledged and failed, and `pending`: requests after the last computed window that the
    replicas logged but have not published yet (counted from the request-log directory, when the service has
    one); no window that holds one of them is computed until they are published."""

    monitor: str
    windows: int = 0
    performance: int = 0
    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    delivered: int = 0
    delivery_errors: list[str] = field(default_factory=list)
    pending: int = 0


class MonitoringService:
    """`request_log`: the directory the serving replicas log to (`LOOPML_REQUEST_LOG_DIR`), when this process
    can read it: runs then count the requests not yet published and hold back the windows that hold them."""

    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        registry: RegistryService | None = None,
        request_log: Path | str | None = None,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.registry = registry or RegistryService(store)
        self.request_log = None if request_log is None else Path(request_log)

    # -- reference profiles ----------------------------------------------------------------------------

    def set_reference_profile(
        self, principal: Principal, model: str, version: int, profile: Profile | Mapping[str, Any] | str
    ) -> Profile:
        """Store the reference profile of a registered model version (replacing an earlier one)."""
        principal.require(Role.EDITOR)
        found = self.registry.get_version(principal, model, version)
        if isinstance(profile, str):
            profile = Profile.from_json(profile)
        elif not isinstance(profile, Profile):
            profile = Profile.from_dict(dict(profile))
        try:
            text = profile.to_json()
        except (TypeError, ValueError) as exc:  # NaN or infinity where the format has none, or a foreign object
            raise InvalidInput(f"the profile cannot be stored as JSON: {exc}") from None
        with self.store.write(principal.actor) as unit:
            unit.monitoring.put_reference_profile(found.name, found.version, text)
        return profile

    def get_reference_profile(self, principal: Principal, model: str, version: int) -> Profile:
        found = self.registry.get_version(principal, model, version)
        with self.store.read() as unit:
            text = unit.monitoring.reference_profile(found.name, found.version)
        if text is None:
            raise NotFound(
                f"model {model!r} version {version} has no reference profile: log the model with its training "
                "data, or set one with set_reference_profile"
            )
        return Profile.from_json(text)

    # -- monitors --------------------------------------------------------------------------------------

    def create_monitor(
        self,
        principal: Principal,
        name: str,
        deployment: str,
        *,
        window: str | int = "1d",
        label_delay: str | int = 0,
        consecutive: int = 3,
        model: str | None = None,
        version: int | None = None,
        thresholds: Mapping[str, float] | None = None,
        webhook: str | None = None,
        kinds: Sequence[str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Monitor:
        """A monitor of `deployment` with tumbling windows (`1d`: by time; `1000`: by count of requests).

        A webhook is a URL this server will POST to, so only an admin may set one.
        """
        principal.require(Role.ADMIN if webhook else Role.EDITOR)
        check_name("monitor", name)
        check_name("deployment", deployment)
        self._check_deployment_reachable(principal, deployment)
        window_seconds, window_rows = parse_window(window)
        if isinstance(consecutive, bool) or not isinstance(consecutive, int) or not 1 <= consecutive <= 1000:
            raise InvalidInput(f"consecutive (k) must be an integer from 1 to 1000, got {consecutive!r}")
        chosen_kinds = tuple(kinds) if kinds else ALERT_KINDS
        unknown = [k for k in chosen_kinds if k not in ALERT_KINDS]
        if unknown:
            raise InvalidInput(f"unknown alert kinds {unknown}; known: {', '.join(ALERT_KINDS)}")
        merged = {**DEFAULT_THRESHOLDS, **_thresholds(thresholds or {})}
        checked_options = dict(options or {})
        _plain_json("options", checked_options, MAX_LABEL_BYTES)
        extra = sorted(set(checked_options) - OPTIONS)
        if extra:
            raise InvalidInput(f"unknown monitor options {extra}; known: {', '.join(sorted(OPTIONS))}")
        time_field = checked_options.get("time_field")
        if time_field is not None and (not isinstance(time_field, str) or not 1 <= len(time_field) <= 250):
            raise InvalidInput("time_field must name an input field (a string of 1 to 250 characters)")
        if time_field is not None and window_seconds is None:
            raise InvalidInput("time_field needs a time window (1h, 1d): count windows follow the order of arrival")
        if "baseline" in checked_options:
            checked_options["baseline"] = check_baselines(checked_options["baseline"])
        if checked_options.get("task") not in (None, "classification", "regression"):
            raise InvalidInput("task must be 'classification' or 'regression'")
        positive = checked_options.get("positive_class")
        if positive is not None and not isinstance(positive, str | int | bool):
            raise InvalidInput("positive_class must be a class label: a string, an integer or a boolean")
        label_delay_seconds = parse_duration(label_delay)
        if "label_horizon" in checked_options:
            horizon = parse_duration(checked_options["label_horizon"])
            if horizon < label_delay_seconds:
                raise InvalidInput(
                    f"the label horizon ({horizon}s) must not be shorter than the label delay ({label_delay_seconds}s)"
                )
            checked_options["label_horizon"] = horizon
        if model is not None:
            check_name("model", model)
        if version is not None and (model is None or isinstance(version, bool) or not isinstance(version, int)):
            raise InvalidInput("a monitor pins a version only together with its model, as an integer")
        monitor = Monitor(
            name=name,
            deployment=deployment,
            model=model,
            version=version,
            window_seconds=window_seconds,
            window_rows=window_rows,
            label_delay_seconds=label_delay_seconds,
            consecutive=consecutive,
            thresholds=merged,
            webhook=None if webhook is None else check_webhook_url(webhook),
            kinds=chosen_kinds,
            options=checked_options,
            created_at=now_ms(),
            created_by=principal.actor,
        )
        with self.store.write(principal.actor) as unit:
            return unit.monitors.create(monitor)

    def get_monitor(self, principal: Principal, name: str) -> Monitor:
        principal.require(Role.VIEWER)
        with self.store.read() as unit:
            return _visible(unit, principal, name)

    def list_monitors(self, principal: Principal) -> list[Monitor]:
        principal.require(Role.VIEWER)
        with self.store.read() as unit:
            return [m for m in unit.monitors.all() if _sees(unit, principal, m)]

    def windows(self, principal: Principal, name: str, limit: int | None = None) -> list[MonitorWindow]:
        principal.require(Role.VIEWER)
        with self.store.read() as unit:
            _visible(unit, principal, name)
            return unit.monitors.windows(name, limit)

    def alerts(self, principal: Principal, monitor: str | None = None, state: str | None = None) -> list[Alert]:
        principal.require(Role.VIEWER)
        if state not in (None, "open", "resolved"):
            raise InvalidInput("state must be 'open' or 'resolved'")
        with self.store.read() as unit:
            if monitor is not None:
                _visible(unit, principal, monitor)
                return unit.monitors.alerts(monitor, state)
            seen = {m.name for m in unit.monitors.all() if _sees(unit, principal, m)}
            return [a for a in unit.monitors.alerts(None, state) if a.monitor in seen]

    # -- feedback --------------------------------------------------------------------------------------

    def record_feedback(self, principal: Principal, items: Sequence[Feedback | Mapping[str, Any]]) -> int:
        """Store ground-truth labels by request id or business key (up to 10,000 per call). A label for a
        request id no segment holds yet is kept and joined once the request shows up (the request log publishes
        segments minutes after the prediction). Sending a label again replaces it. Labels of a project-scoped
        token are joined only by monitors of its project; those of a global token by every monitor."""
        principal.require(Role.EDITOR)
        if not items:
            return 0
        if len(items) > MAX_FEEDBACK:
            raise InvalidInput(f"{len(items)} labels in one call; send at most {MAX_FEEDBACK} per call")
        checked = [_feedback(item, i) for i, item in enumerate(items)]
        seen: set[tuple[str, str]] = set()
        for item in checked:
            key = ("id", item.request_id) if item.request_id is not None else ("key", str(item.key))
            if key in seen:
                raise InvalidInput(f"the {key[0]} {key[1]!r} appears twice in one feedback batch")
            seen.add(key)
        with self.store.write(principal.actor) as unit:
            return unit.monitoring.record_feedback(checked, now_ms(), principal.project or "")

    # -- runs ------------------------------------------------------------------------------------------

    def run_monitor(self, principal: Principal, name: str, now: int | None = None) -> RunResult:
        """Compute the monitor's new complete windows and pending performance, then its alerts (see the module
        docstring). `now` (ms since the epoch) defaults to the current time."""
        principal.require(Role.EDITOR)
        now = now_ms() if now is None else int(now)
        with self.store.read() as unit:
            monitor = _visible(unit, principal, name)
            known = unit.monitors.windows(name)
            received = unit.monitoring.labels_received_until()
        delay = monitor.label_delay_seconds * 1000
        horizon = label_horizon_seconds(monitor) * 1000
        ready = [w for w in known if w.rows > 0 and now >= w.end_time + delay and w.updated_at < w.end_time + horizon]
        pending = [w for w in ready if _labels_changed(w, received)]
        waiting = {w.start_time for w in pending}
        # the horizon passed with no label since the last computation: the window's performance is final
        closed = [
            replace(w, updated_at=now) for w in ready if w.start_time not in waiting and now >= w.end_time + horizon
        ]
        cursor = known[-1].end_time if known else 0
        start = min([cursor, *(w.start_time for w in pending)])
        # the unpublished tail is read before the registered segments (see `unpublished_times`)
        tail = held = np.zeros(0, dtype=np.int64)
        if self.request_log is not None:
            time_field = monitor.options.get("time_field")
            tail, held = unpublished_times(self.request_log, monitor.deployment, cursor, time_field)
        with self.store.read() as unit:
            segments = unit.monitoring.segments(monitor.deployment, start=start)
        table = read_records(self.artifacts, segments, monitor.deployment, start)
        times = event_times(table, monitor.options.get("time_field"))
        before = int(held.min()) if len(held) else None
        spans = _new_windows(monitor, times, cursor, now, before)[:MAX_WINDOWS_PER_RUN]
        computed = self._compute(principal, monitor, table, times, spans, known, now, received)
        updated = [
            self._with_performance(
                principal, monitor, w, Records(_slice(table, times, w.start_time, w.end_time)), now, received, known
            )
            for w in pending
        ]
        result = RunResult(
            name,
            windows=len(computed),
            performance=len(updated) + sum(w.performance is not None for w in computed),
            pending=len(tail),
        )
        return self._store_run(principal, monitor, result, [*closed, *updated, *computed], len(computed), now)

    def backfill(
        self, principal: Principal, name: str, requests: Sequence[Mapping[str, Any]], now: int | None = None
    ) -> RunResult:
        """Compute a monitor's windows from past requests instead of the request log (a backtest): the same
        windows, drift, performance (from the labels stored now) and alerts that serving these requests and
        running the monitor at `now` would give. Each request is a dict like a logged record: `request_id`,
        `time_ms`, `inputs` (`{column: [values]}`), `outputs` (a list), and optionally `model`, `version` (default:
        the monitor's pinned version) and `status` (200). The monitor must not have windows yet."""
        principal.require(Role.EDITOR)
        now = now_ms() if now is None else int(now)
        if not requests:
            raise InvalidInput("no requests to backfill")
        if len(requests) > MAX_BACKFILL:
            raise InvalidInput(f"{len(requests)} requests in one backfill; send at most {MAX_BACKFILL}")
        with self.store.read() as unit:
            monitor = _visible(unit, principal, name)
            known = unit.monitors.windows(name)
            received = unit.monitoring.labels_received_until()
        table = order_records(requests_table(monitor, requests))
        if known:
            raise InvalidInput(
                f"monitor {name!r} already has windows; backfill into a new monitor (same settings, another name)"
            )
        times = event_times(table, monitor.options.get("time_field"))
        spans = _new_windows(monitor, times, 0, now)
        if len(spans) > MAX_WINDOWS_PER_RUN:
            raise InvalidInput(f"the requests span {len(spans)} windows; backfill at most {MAX_WINDOWS_PER_RUN}")
        computed = self._compute(principal, monitor, table, times, spans, known, now, received)
        result = RunResult(name, windows=len(computed), performance=sum(w.performance is not None for w in computed))
        return self._store_run(principal, monitor, result, computed, len(computed), now, backfill=True)

    def _store_run(
        self,
        principal: Principal,
        monitor: Monitor,
        result: RunResult,
        windows: Sequence[MonitorWindow],
        new_windows: int,
        now: int,
        backfill: bool = False,
    ) -> RunResult:
        """Store a run's windows and alerts in one transaction, then deliver its webhook; a backfill is refused
        if windows appeared while it computed."""
        with self.store.write(principal.actor) as unit:
            unit.monitors.lock(monitor.name)
            if backfill and unit.monitors.windows(monitor.name):
                raise InvalidInput(
                    f"monitor {monitor.name!r} got windows while the backfill ran; backfill into a new one"
                )
            for window in windows:
                unit.monitors.put_window(window)
            self._update_alerts(unit, monitor, result)
            unit.monitors.mark_run(monitor.name, now, new_windows)
        if monitor.webhook:
            self._deliver(principal, monitor, result)
        return result

    def run_all(self, principal: Principal, now: int | None = None) -> list[RunResult]:
        """Run every monitor; a monitor that fails is reported in its result, never stopping the others."""
        results = []
        for monitor in self.list_monitors(principal):
            try:
                results.append(self.run_monitor(principal, monitor.name, now))
            except Exception as error:  # one broken monitor must not stop the others
                message = error.message if isinstance(error, LoopmlError) else f"{type(error).__name__}: {error}"
                results.append(RunResult(monitor.name, delivery_errors=[f"run failed: {message}"]))
        return results

    def report_html(self, principal: Principal, name: str, limit: int = 500) -> str:
        """The self-contained HTML report of the monitor's latest `limit` windows."""
        from loopml.monitoring.report import render_report

        monitor = self.get_monitor(principal, name)
        windows = self.windows(principal, name, limit)
        latest = next((w for w in reversed(windows) if w.drift is not None and w.model is not None), None)
        profile = None
        if latest is not None and latest.model is not None and latest.version is not None:
            with self.store.read() as unit:
                text = unit.monitoring.reference_profile(latest.model, latest.version)
            profile = None if text is None else Profile.from_json(text)
        return render_report(monitor, windows, profile)

    # -- internals -------------------------------------------------------------------------------------

    def _check_deployment_reachable(self, principal: Principal, deployment: str) -> None:
        """A project-scoped token monitors only an existing deployment of its project (404 otherwise, as for a
        missing one); a global token may also name a deployment that does not exist yet."""
        if principal.project is None:
            return
        with self.store.read() as unit:
            found = unit.deployments.find(deployment)
        if found is None or found.project != principal.project:
            raise DeploymentNotFound(f"deployment {deployment!r} does not exist")

    def _compute(
        self,
        principal: Principal,
        monitor: Monitor,
        table: pa.Table,
        times: np.ndarray,
        spans: Sequence[tuple[int, int]],
        known: Sequence[MonitorWindow],
        now: int,
        received: int,
    ) -> list[MonitorWindow]:
        """The windows `spans` of `table` (placed by `times`), with their performance once the label delay after
        them has passed at `now`."""
        delay = monitor.label_delay_seconds * 1000
        computed: list[MonitorWindow] = []
        profiles: dict[tuple[str, int], Profile | None] = {}
        for begin, end in spans:
            records = Records(_slice(table, times, begin, end))
            window = self._window(monitor, records, begin, end, now, profiles)
            if now >= end + delay:
                window = self._with_performance(principal, monitor, window, records, now, received, [*known, *computed])
            computed.append(window)
        return computed

    def _profile(self, cache: dict[tuple[str, int], Profile | None], model: str, version: int) -> Profile | None:
        if (model, version) not in cache:
            with self.store.read() as unit:
                text = unit.monitoring.reference_profile(model, version)
            cache[(model, version)] = None if text is None else Profile.from_json(text)
        return cache[(model, version)]

    def _window(
        self,
        monitor: Monitor,
        records: Records,
        begin: int,
        end: int,
        now: int,
        profiles: dict[tuple[str, int], Profile | None],
    ) -> MonitorWindow:
        model, version = records.majority()
        if monitor.model is not None:
            model = monitor.model
            version = monitor.version if monitor.version is not None else version
        thresholds = monitor.thresholds
        judged = records.requests >= thresholds["min_rows"]
        drift: dict[str, Any] | None = None
        breaches: dict[str, bool | None] = dict.fromkeys(monitor.kinds)
        profile = None if model is None or version is None else self._profile(profiles, model, version)
        if profile is None:
            drift = {"note": f"no reference profile for {model!r} version {version}"} if model else None
        else:
            prediction = monitor.options.get("prediction_column") or profile.prediction_column or "prediction"
            frame, _ = records.frame(prediction)
            try:
                report = dataset_drift(
                    profile,
                    frame,
                    share_threshold=float(thresholds["drift_share"]),
                    prediction_column=prediction if prediction in profile.columns else None,
                )
            except InvalidInput as error:
                drift = {"error": error.message}
            else:
                drift = report.to_dict()
                drift.pop("segments", None)
                drift["histograms"] = _histograms(profile, frame)
                if judged:
                    breaches["drift"] = report.drifted
                    breaches["prediction_drift"] = None if report.prediction is None else report.prediction.drifted
        error_rate = records.status_rate(at_least=500)
        contract_rate = records.status_rate(CONTRACT_STATUSES)
        if drift is not None:
            drift["error_rate"] = error_rate
            drift["contract_violation_rate"] = contract_rate
        if judged:
            breaches["error_rate"] = error_rate > thresholds["error_rate"]
            breaches["contract"] = contract_rate > thresholds["contract_violation_rate"]
        return MonitorWindow(
            monitor=monitor.name,
            start_time=begin,
            end_time=end,
            rows=records.requests,
            labelled_rows=0,
            model=model,
            version=version,
            drift=drift,
            performance=None,
            breaches={k: v for k, v in breaches.items() if k in monitor.kinds},
            created_at=now,
            updated_at=now,
        )

    def _with_performance(
        self,
        principal: Principal,
        monitor: Monitor,
        window: MonitorWindow,
        records: Records,
        now: int,
        received: int,
        history: Sequence[MonitorWindow] = (),
    ) -> MonitorWindow:
        key_column = monitor.options.get("key_column")
        requests = list(records.rows())
        ids = [r[0] for r in requests]
        keys = [str(v) for r in requests for v in (r[2].get(key_column) or [])] if key_column else []
        with self.store.read() as unit:
            deployment = unit.deployments.find(monitor.deployment)
            labels = unit.monitoring.labels(ids, keys, "" if deployment is None else deployment.project)
        truth: list[Any] = []
        predicted: list[Any] = []
        probabilities: list[list[float] | None] = []
        classes: list[Any] | None = None  # the class order of the logged probabilities (the first model's)
        logged = records.probabilities()
        delays: list[float] = []
        for request_id, time_ms, columns, answers in requests:
            per_row = _row_labels(labels, request_id, columns, key_column, len(answers))
            given = logged.get(request_id)
            if given is not None and (len(given[1]) != len(answers) or classes not in (None, given[0])):
                given = None
            for row, (answer, found) in enumerate(zip(answers, per_row, strict=True)):
                if found is None or found[0] is None:
                    continue
                truth.append(found[0])
                delays.append((found[1] - time_ms) / 1000)
                if given is not None:
                    classes = given[0]
                    probabilities.append([float(v) for v in given[1][row]])
                    predicted.append(answer)
                elif isinstance(answer, list) and answer and all(isinstance(v, int | float) for v in answer):
                    probabilities.append([float(v) for v in answer])
                    predicted.append(int(np.argmax(answer)))
                else:
                    probabilities.append(None)
                    predicted.append(answer)
        performance: dict[str, Any] = {
            "labelled_rows": len(truth),
            "metrics": {},
            "reference": {},
            "drops": {},
            "labels_received_until": received,
        }
        breaches = dict(window.breaches)
        if "metric_drop" in breaches:
            breaches["metric_drop"] = None  # judged again below from the labels stored now
        if truth:
            task = monitor.options.get("task") or infer_task(truth, predicted)
            try:
                metrics = (
                    classification_metrics(
                        truth,
                        predicted,
                        probabilities if any(p is not None for p in probabilities) else None,
                        classes=classes,
                        positive=monitor.options.get("positive_class"),
                    )
                    if task == "classification"
                    else regression_metrics(truth, predicted)
                )
            except (InvalidInput, ValueError, TypeError) as error:
                performance["error"] = f"labels and predictions do not fit a {task} task: {error}"
                metrics = {}
            baselines = self._baselines(principal, monitor, window, history)
            reference = next(iter(baselines.values()))["metrics"] if baselines else {}
            drops: dict[str, float] = {}
            for baseline, compared in baselines.items():
                compared["drops"] = metric_drops(metrics, compared["metrics"], monitor.thresholds["metric_drop"])
                prefix = "" if baseline == "registration" else f"{baseline}."
                drops.update({prefix + k: v for k, v in compared["drops"].items()})
            quantiles = np.quantile(np.asarray(delays), [0.5, 0.9, 1.0])
            performance.update(
                task=task,
                metrics={k: _finite(v) for k, v in metrics.items()},
                reference=reference,
                drops=drops,
                baselines=baselines,
                label_delay_seconds={
                    "p50": float(quantiles[0]),
                    "p90": float(quantiles[1]),
                    "max": float(quantiles[2]),
                },
            )
            compared_with = any(b["metrics"] for b in baselines.values())
            if "metric_drop" in breaches and len(truth) >= monitor.thresholds["min_labels"] and compared_with:
                breaches["metric_drop"] = bool(drops)
        return replace(window, labelled_rows=len(truth), performance=performance, breaches=breaches, updated_at=now)

    def _reference_metrics(self, principal: Principal, monitor: Monitor, window: MonitorWindow) -> dict[str, float]:
        given = monitor.options.get("reference_metrics")
        if isinstance(given, Mapping) and given:
            return {str(k): float(v) for k, v in given.items()}
        if window.model is None or window.version is None:
            return {}
        return self._registration_metrics(principal, window.model, window.version)

    def _baselines(
        self, principal: Principal, monitor: Monitor, window: MonitorWindow, history: Sequence[MonitorWindow]
    ) -> dict[str, dict[str, Any]]:
        """Per baseline of the monitor (see `loopml.monitoring.baselines`): the version compared with, where its
        metrics come from, and the metrics; a baseline with nothing to compare with is left out."""
        found: dict[str, dict[str, Any]] = {}
        for baseline in monitor.options.get("baseline") or ["registration"]:
            version: tuple[str, int] | None = None
            source, metrics, at = "registration", {}, None
            if baseline == "registration":
                version = None if window.model is None or window.version is None else (window.model, window.version)
                metrics = self._reference_metrics(principal, monitor, window)
            elif baseline == "replaced" and (before := replaced(window, history)) is not None:
                latest, model, number = before
                version = (model, number)
                if latest is not None and latest.performance is not None:
                    source, at = "realised", latest.start_time
                    metrics = {k: float(v) for k, v in latest.performance["metrics"].items() if v is not None}
                else:
                    metrics = self._registration_metrics(principal, model, number)
            elif baseline == "champion" and window.model is not None:
                try:
                    champion = self.registry.get_alias(principal, window.model, CHAMPION_ALIAS)
                except NotFound:
                    continue
                if champion.version != window.version:  # the champion serving is compared with its registration
                    version = (champion.name, champion.version)
                    metrics = self._registration_metrics(principal, champion.name, champion.version)
            if metrics:
                found[baseline] = {
                    "model": None if version is None else version[0],
                    "version": None if version is None else version[1],
                    "source": source,
                    "window": at,
                    "metrics": metrics,
                }
        return found

    def _registration_metrics(self, principal: Principal, model: str, number: int) -> dict[str, float]:
        try:
            version = self.registry.get_version(principal, model, number)
        except NotFound:
            return {}
        found: dict[str, float] = {}
        for name in ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "rmse", "mae", "mape", "r2"):
            for pattern in _METRIC_KEYS:
                value = version.metrics.get(pattern.format(name))
                if value is not None and math.isfinite(value):
                    found[name] = float(value)
                    break
        return found

    def _update_alerts(self, unit: Any, monitor: Monitor, result: RunResult) -> None:
        history: list[MonitorWindow] = unit.monitors.windows(monitor.name)
        by_start = {w.start_time: w for w in history}
        holding: set[str] = set()
        for kind in monitor.kinds:
            for streak in streaks(history, kind, monitor.consecutive):
                key = f"{monitor.name}:{kind}:{streak.first_window}"
                holding.add(key)
                details = {"windows": streak.windows, **_detail(kind, by_start[streak.last_window])}
                before = {a.dedupe_key for a in unit.monitors.alerts(monitor.name)}
                alert = unit.monitors.open_alert(monitor.name, kind, key, streak.first_window, details)
                if key not in before:
                    result.opened.append(key)
                if alert.state != "open":
                    continue
                if streak.ended_by is not None:
                    unit.monitors.resolve_alert(alert, streak.ended_by)
                    result.resolved.append(key)
                elif alert.last_window != streak.last_window:
                    unit.monitors.update_alert(alert, streak.last_window, details)
        # late labels judged a window again and its streak no longer holds: the alert was not borne out
        for alert in unit.monitors.alerts(monitor.name, "open"):
            if alert.dedupe_key not in holding:
                unit.monitors.resolve_alert(alert, alert.last_window)
                result.resolved.append(alert.dedupe_key)

    def _deliver(self, principal: Principal, monitor: Monitor, result: RunResult) -> None:
        assert monitor.webhook is not None
        with self.store.read() as unit:
            waiting = [a for a in unit.monitors.alerts(monitor.name) if not a.delivered]
        for alert in waiting:
            error = deliver(
                monitor.webhook, webhook_payload(alert, monitor.deployment), f"{alert.dedupe_key}:{alert.state}"
            )
            with self.store.write(principal.actor) as unit:
                unit.monitors.record_delivery(alert, error)
            if error is None:
                result.delivered += 1
            else:
                result.delivery_errors.append(f"{alert.dedupe_key}: {error}")


def _sees(unit: Unit, principal: Principal, monitor: Monitor) -> bool:
    """A monitor belongs to the project of its deployment; one whose deployment does not exist (yet) belongs to
    no project, so only global tokens see it."""
    if principal.project is None:
        return True
    found = unit.deployments.find(monitor.deployment)
    return found is not None and principal.can_see(found.project)


def _visible(unit: Unit, principal: Principal, name: str) -> Monitor:
    """The monitor `name` if the principal may see it; `MonitorNotFound` alike when hidden or missing."""
    monitor: Monitor = unit.monitors.get(name)
    if not _sees(unit, principal, monitor):
        raise MonitorNotFound(f"monitor {name!r} does not exist")
    return monitor


def label_horizon_seconds(monitor: Monitor) -> int:
    """How long after a window's end late labels still update its performance (see
    `DEFAULT_LABEL_HORIZON_SECONDS`)."""
    given = monitor.options.get("label_horizon")
    if isinstance(given, int) and not isinstance(given, bool):
        return given
    return max(DEFAULT_LABEL_HORIZON_SECONDS, monitor.label_delay_seconds)


def _labels_changed(window: MonitorWindow, received: int) -> bool:
    """Whether the window's performance is (re)computed: never computed yet, or labels arrived since it was."""
    if window.performance is None:
        return True
    return received > int(window.performance.get("labels_received_until") or 0)


def _thresholds(given: Mapping[str, Any]) -> dict[str, float]:
    unknown = sorted(set(given) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise InvalidInput(f"unknown thresholds {unknown}; known: {', '.join(sorted(DEFAULT_THRESHOLDS))}")
    checked = {}
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise InvalidInput(f"threshold {key} must be a finite number >= 0, got {value!r}")
        checked[key] = float(value)
    return checked


def _feedback(item: Feedback | Mapping[str, Any], index: int) -> Feedback:
    if isinstance(item, Mapping):
        unknown = set(item) - {"request_id", "key", "label", "time_ms"}
        if unknown:
            raise InvalidInput(f"feedback[{index}] has unknown fields {sorted(unknown)}")
        if "label" not in item:
            raise InvalidInput(f"feedback[{index}] has no label")
        item = Feedback(item["label"], item.get("request_id"), item.get("key"), item.get("time_ms"))
    if (item.request_id is None) == (item.key is None):
        raise InvalidInput(f"feedback[{index}] needs exactly one of request_id or key")
    for what, value in (("request_id", item.request_id), ("key", item.key)):
        if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= 250 or "\x00" in value):
            raise InvalidInput(f"feedback[{index}].{what} must be a string of 1 to 250 characters")
    if item.time_ms is not None and (
        isinstance(item.time_ms, bool) or not isinstance(item.time_ms, int) or not 0 <= item.time_ms < 2**63
    ):
        raise InvalidInput(f"feedback[{index}].time_ms must be an integer (ms since the epoch)")
    _plain_json(f"feedback[{index}].label", item.label, MAX_LABEL_BYTES)
    return item


def _plain_json(what: str, value: object, limit: int) -> None:
    try:
        encoded = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise InvalidInput(
            f"{what} must be plain JSON (numbers within 64 bits, strings, lists, objects): {exc}"
        ) from None
    if len(encoded) > limit:
        raise InvalidInput(f"{what} is {len(encoded)} bytes as JSON; the limit is {limit}")
    if b"\\u0000" in encoded:
        raise InvalidInput(f"{what} contains a NUL character, which no store can keep")


def _new_windows(
    monitor: Monitor, times: np.ndarray, cursor: int, now: int, before: int | None = None
) -> list[tuple[int, int]]:
    """The complete windows not computed yet; none may end after `before` (the earliest request not published
    yet), so a window never misses a request that is still on its way."""
    grace = int(float(monitor.options.get("grace_seconds") or 0) * 1000)
    until = now if before is None else min(now, before)
    later = times[(times >= cursor) & (times < until)]
    if monitor.window_seconds is not None:
        size = monitor.window_seconds * 1000
        starts = np.unique(later // size) * size
        return [(int(s), int(s) + size) for s in starts if s + size + grace <= now and s + size <= until]
    rows = int(monitor.window_rows or 0)
    found = []
    i = 0
    while i + rows <= len(later):
        j = i + rows
        while j < len(later) and later[j] == later[j - 1]:
            j += 1
        found.append((int(later[i]), int(later[j - 1]) + 1))
        i = j
    return found


def _slice(table: pa.Table, times: np.ndarray, begin: int, end: int) -> pa.Table:
    return table.filter(pa.array((times >= begin) & (times < end)))


def _histograms(profile: Profile, frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Reference and current shares per bin (numeric) or category, for the report's plots."""
    found: dict[str, dict[str, Any]] = {}
    for name, column in profile.columns.items():
        if name not in frame.columns:
            continue
        if column.kind == "numeric" and column.edges is not None and column.shares is not None:
            values = pd.to_numeric(frame[name], errors="coerce").dropna().to_numpy(dtype=np.float64)
            counts = np.bincount(np.searchsorted(column.edges, values, side="right"), minlength=len(column.edges) + 1)
            total = counts.sum()
            found[name] = {
                "kind": "numeric",
                "edges": column.edges,
                "reference": column.shares,
                "current": (counts / total).tolist() if total else [0.0] * len(counts),
            }
        elif column.kind == "categorical" and column.categories:
            texts = frame[name].dropna().astype(str)
            counts_by = texts.value_counts()
            labels = list(column.categories)
            ref_total = sum(column.categories.values()) + (column.other_count or 0)
            cur_total = int(counts_by.sum())
            current = [int(counts_by.get(c, 0)) for c in labels]
            found[name] = {
                "kind": "categorical",
                "labels": [*labels, "(other)"],
                "reference": [v / ref_total for v in [*column.categories.values(), column.other_count or 0]],
                "current": [v / cur_total if cur_total else 0.0 for v in [*current, cur_total - sum(current)]],
            }
    return found


def _row_labels(
    labels: Mapping[str, tuple[Any, int]],
    request_id: str,
    columns: Mapping[str, list[Any]],
    key_column: str | None,
    rows: int,
) -> list[tuple[Any, int] | None]:
    found = labels.get(request_id)
    if found is not None:
        label, at = found
        if isinstance(label, list) and len(label) == rows:
            return [(value, at) for value in label]
        return [(label, at)] if rows == 1 else [None] * rows
    if key_column and isinstance(columns.get(key_column), list):
        return [labels.get(f"key:{value}") for value in columns[key_column]]
    return [None] * rows


def _detail(kind: str, window: MonitorWindow) -> dict[str, Any]:
    drift = window.drift or {}
    performance = window.performance or {}
    if kind == "drift":
        return {"drifted_columns": drift.get("drifted_columns", []), "drifted_share": drift.get("drifted_share")}
    if kind == "prediction_drift":
        return {"prediction": drift.get("prediction")}
    if kind == "metric_drop":
        return {"drops": performance.get("drops", {}), "metrics": performance.get("metrics", {})}
    if kind == "error_rate":
        return {"error_rate": drift.get("error_rate")}
    return {"contract_violation_rate": drift.get("contract_violation_rate")}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
