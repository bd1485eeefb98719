"""Prometheus gauges of the latest window of every monitor, read from the metadata store at scrape time.

loopml_drift_score{deployment, feature}      drift score of each feature (and `prediction`)
loopml_model_metric{deployment, metric}      realised performance (latest window with labels)
loopml_monitor_drifted{deployment, monitor}  1 if the latest window drifted (dataset verdict)
loopml_alerts_open{deployment, monitor}      open alerts
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from loopml.store import MetadataStore

__all__ = ["CONTENT_TYPE_LATEST", "MonitoringCollector", "exposition"]

_RECENT = 50
"""Windows read per monitor to find the latest one with labels."""


class MonitoringCollector(Collector):
    """With `project`, only the monitors of that project's deployments (a monitor of a deployment that does not
    exist belongs to no project)."""

    def __init__(self, store: MetadataStore, project: str | None = None) -> None:
        self.store = store
        self.project = project

    def collect(self) -> Iterator[Metric]:
        drift = GaugeMetricFamily(
            "loopml_drift_score", "Drift score of a feature in the latest window", labels=["deployment", "feature"]
        )
        metric = GaugeMetricFamily(
            "loopml_model_metric",
            "Realised model metric in the latest labelled window",
            labels=["deployment", "metric"],
        )
        drifted = GaugeMetricFamily(
            "loopml_monitor_drifted", "1 if the latest window shows dataset drift", labels=["deployment", "monitor"]
        )
        open_alerts = GaugeMetricFamily("loopml_alerts_open", "Open alerts", labels=["deployment", "monitor"])
        with self.store.read() as unit:
            for monitor in unit.monitors.all():
                if self.project is not None:
                    deployment = unit.deployments.find(monitor.deployment)
                    if deployment is None or deployment.project != self.project:
                        continue
                windows = unit.monitors.windows(monitor.name, _RECENT)
                judged = [w for w in windows if w.drift and "columns" in w.drift]
                if judged:
                    latest = judged[-1].drift
                    assert latest is not None
                    for column in [*latest["columns"], latest.get("prediction")]:
                        if column and isinstance(column.get("score"), int | float) and math.isfinite(column["score"]):
                            drift.add_metric([monitor.deployment, column["column"]], float(column["score"]))
                    drifted.add_metric([monitor.deployment, monitor.name], 1.0 if latest.get("drifted") else 0.0)
                labelled = [w for w in windows if w.performance and w.performance.get("metrics")]
                if labelled:
                    assert labelled[-1].performance is not None
                    for name, value in labelled[-1].performance["metrics"].items():
                        if isinstance(value, int | float):
                            metric.add_metric([monitor.deployment, name], float(value))
                count = len(unit.monitors.alerts(monitor.name, "open"))
                open_alerts.add_metric([monitor.deployment, monitor.name], float(count))
        yield from (drift, metric, drifted, open_alerts)


def exposition(store: MetadataStore, project: str | None = None) -> bytes:
    """The text exposition of the monitoring gauges (a fresh registry per call: no global state); with
    `project`, only the series of that project's deployments."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MonitoringCollector(store, project))
    return generate_latest(registry)
