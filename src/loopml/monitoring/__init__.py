"""Monitoring service: drift of current data against a stored reference profile (per column, per
segment, for the dataset, and for predictions and labels).

Reads reference summaries only (`loopml.data.Profile`), never the training data. Imports `loopml.data`,
the domain and `loopml.errors`; it must not import the store, the server or the CLI.
"""

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

__all__ = [
    "METHODS",
    "ColumnDrift",
    "DriftMethod",
    "DriftReport",
    "SegmentDrift",
    "chi_square",
    "column_drift",
    "dataset_drift",
    "default_method",
    "jensen_shannon",
    "ks",
    "psi",
    "register_method",
    "wasserstein_normalised",
]
