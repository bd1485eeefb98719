"""Experiment tracking: projects, experiments, runs, params, metrics, tags, datasets, run artifacts, search.

The public module of the service: `TrackingService`. It holds the rules (validation, write-once params,
who may see and change what) so the embedded SDK and the server behave the same. Imports ports
(`loopml.store`, `loopml.artifacts`) and the domain; never the server, CLI or SDK.
"""

from loopml.tracking.service import DATASET_ROLES, MAX_RESULTS, TrackingService

__all__ = ["DATASET_ROLES", "MAX_RESULTS", "TrackingService"]
