"""Domain objects: frozen dataclasses and enums shared by every layer.

Owns the vocabulary (Run, Metric, Experiment, Dataset, RegisteredModel, ModelVersion, AuditEvent, ...).
Imports the standard library only: no I/O, no framework, no other loopml package.
"""

from loopml.domain.audit import AuditEvent
from loopml.domain.deployments import Deployment, DeploymentRevision, DeploymentVersion, RolloutDecision
from loopml.domain.metric_series import MetricSeries
from loopml.domain.models import (
    AliasChange,
    LoggedModelRecord,
    LoggedModelStatus,
    ModelReference,
    ModelVersion,
    ModelVersionStatus,
    RegisteredModel,
    parse_model_uri,
)
from loopml.domain.pipelines import LineageEdge, PipelineRunRecord, StepRun, StepState
from loopml.domain.tokens import Principal, Role, Token
from loopml.domain.tracking import (
    ArtifactRecord,
    Dataset,
    DatasetInput,
    Experiment,
    Metric,
    MetricColumns,
    Page,
    Project,
    Run,
    RunStatus,
)

__all__ = [
    "AliasChange",
    "ArtifactRecord",
    "AuditEvent",
    "Dataset",
    "DatasetInput",
    "Deployment",
    "DeploymentRevision",
    "DeploymentVersion",
    "Experiment",
    "LineageEdge",
    "LoggedModelRecord",
    "LoggedModelStatus",
    "Metric",
    "MetricColumns",
    "MetricSeries",
    "ModelReference",
    "ModelVersion",
    "ModelVersionStatus",
    "Page",
    "PipelineRunRecord",
    "Principal",
    "Project",
    "RegisteredModel",
    "Role",
    "RolloutDecision",
    "Run",
    "RunStatus",
    "StepRun",
    "StepState",
    "Token",
    "parse_model_uri",
]
