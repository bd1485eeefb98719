"""Domain objects: frozen dataclasses and enums shared by every layer.

Owns the vocabulary (Run, Metric, Experiment, Dataset, AuditEvent, ...). Imports the standard library
only: no I/O, no framework, no other loopml package.
"""

from loopml.domain.audit import AuditEvent
from loopml.domain.tokens import Principal, Role, Token
from loopml.domain.tracking import (
    ArtifactRecord,
    Dataset,
    DatasetInput,
    Experiment,
    Metric,
    Page,
    Project,
    Run,
    RunStatus,
)

__all__ = [
    "ArtifactRecord",
    "AuditEvent",
    "Dataset",
    "DatasetInput",
    "Experiment",
    "Metric",
    "Page",
    "Principal",
    "Project",
    "Role",
    "Run",
    "RunStatus",
    "Token",
]
