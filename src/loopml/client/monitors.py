"""Monitors of deployments, their windows, alerts and reference profiles (`client.monitors`)."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.api import monitoring as ops
from loopml.domain.monitoring import Alert, Monitor, MonitorWindow

if TYPE_CHECKING:
    from loopml.client.client import Client


class Monitors:
    """Monitors of deployments over the request log (see docs/monitoring.md); `loopml monitor ...` mirrors these.

    Needs a loopml server, or the embedded store that the serving replicas publish their request log to.
    """

    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def create(
        self,
        name: str,
        deployment: str,
        window: str | int = "1d",
        label_delay: str | int = "0s",
        consecutive: int = 3,
        *,
        model: str | None = None,
        version: int | None = None,
        thresholds: Mapping[str, float] | None = None,
        webhook: str | None = None,
        kinds: Sequence[str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Monitor:
        """A monitor of `deployment`: `window` `1d` (by time) or `1000` (by count of requests); an alert opens
        after `consecutive` breaching windows and is POSTed to `webhook`."""
        return self._backend.call(
            ops.CREATE_MONITOR,
            name=name,
            deployment=deployment,
            window=str(window),
            label_delay=str(label_delay),
            consecutive=consecutive,
            model=model,
            version=version,
            thresholds=thresholds,
            webhook=webhook,
            kinds=kinds,
            options=options,
        )

    def list(self) -> builtins.list[Monitor]:
        return self._backend.call(ops.LIST_MONITORS)

    def get(self, name: str) -> Monitor:
        return self._backend.call(ops.GET_MONITOR, name=name)

    def run(self, name: str, now: int | None = None) -> dict[str, Any]:
        """Compute the monitor's new complete windows and pending performance, and its alerts."""
        return self._backend.call(ops.RUN_MONITOR, name=name, now=now)

    def backfill(
        self,
        name: str,
        requests: str | Path | Any,
        labels: str | Path | Any | None = None,
        *,
        prediction_column: str | None = None,
        now: int | None = None,
    ) -> dict[str, Any]:
        """Build a monitor's windows from past requests, a Parquet or CSV file (or a DataFrame) with one row per
        request, instead of the request log: a backtest gives the same windows as serving those requests would.
        `labels` (a file or frame with `label` and `request_id` or `key`) are stored first. The monitor must
        have no windows yet. See docs/monitoring.md for the columns."""
        from loopml.monitoring import read_backfill_labels, read_backfill_requests

        monitor = self._backend.call(ops.GET_MONITOR, name=name)
        rows = read_backfill_requests(
            requests,
            prediction_column=prediction_column or monitor.options.get("prediction_column") or "prediction",
            time_column=monitor.options.get("time_field"),
        )
        if labels is not None:
            items = read_backfill_labels(labels)
            for start in range(0, len(items), 10_000):
                self._backend.call(ops.RECORD_FEEDBACK, items=items[start : start + 10_000])
        return self._backend.call(ops.BACKFILL_MONITOR, name=name, requests=rows, now=now)

    def windows(self, name: str, limit: int | None = None) -> builtins.list[MonitorWindow]:
        return self._backend.call(ops.MONITOR_WINDOWS, name=name, limit=limit)

    def report(self, name: str, html: str | Path | None = None) -> str:
        """The self-contained HTML report; written to `html` when given."""
        page = self._backend.call(ops.MONITOR_REPORT, name=name)
        if html is not None:
            Path(html).write_text(page, encoding="utf-8")
        return page

    def alerts(self, monitor: str | None = None, state: str | None = None) -> builtins.list[Alert]:
        return self._backend.call(ops.LIST_ALERTS, monitor=monitor, state=state)

    def set_reference_profile(self, model: str, version: int, profile: Any) -> None:
        """Store the reference profile (a `loopml.data.Profile` or its dict) of a registered model version."""
        data = profile.to_dict() if hasattr(profile, "to_dict") else dict(profile)
        self._backend.call(ops.SET_REFERENCE_PROFILE, model=model, version=version, profile=data)

    def get_reference_profile(self, model: str, version: int) -> Any:
        from loopml.data import Profile

        return Profile.from_dict(self._backend.call(ops.GET_REFERENCE_PROFILE, model=model, version=version))
