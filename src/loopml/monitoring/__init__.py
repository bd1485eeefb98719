"""Monitoring service: drift of current data against a stored reference profile (per column, per
segment, for the dataset, and for predictions and labels), and monitors over the live request log
(windows, late labels, realised performance, alerts, gauges, the HTML report).

Reads reference summaries only (`loopml.data.Profile`), never the training data. Imports `loopml.data`,
the registry, the store, the artifact store, the domain and `loopml.errors`; never the server, CLI or SDK.
"""

from loopml.monitoring.backfill import read_backfill_labels, read_backfill_requests
from loopml.monitoring.drift import (
    METHODS,
    ColumnDrift,
    DriftMethod,
    DriftReport,
    SegmentDrift,
    chi_square,
    column_drift,
    dataset_drift,
    default_method,
    jensen_shannon,
    ks,
    psi,
    register_method,
    wasserstein_normalised,
)
from loopml.monitoring.gauges import MonitoringCollector, exposition
from loopml.monitoring.publisher import StoreSegmentPublisher
from loopml.monitoring.scheduler import MonitorScheduler
from loopml.monitoring.service import DEFAULT_THRESHOLDS, MAX_FEEDBACK, MonitoringService, RunResult

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MAX_FEEDBACK",
    "METHODS",
    "ColumnDrift",
    "DriftMethod",
    "DriftReport",
    "MonitorScheduler",
    "MonitoringCollector",
    "MonitoringService",
    "RunResult",
    "SegmentDrift",
    "StoreSegmentPublisher",
    "chi_square",
    "column_drift",
    "dataset_drift",
    "default_method",
    "exposition",
    "jensen_shannon",
    "ks",
    "psi",
    "read_backfill_labels",
    "read_backfill_requests",
    "register_method",
    "wasserstein_normalised",
]
