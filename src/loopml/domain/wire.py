"""JSON shapes of the domain objects, shared by the server and the HTTP client (stdlib only).

Metric values that JSON cannot carry (NaN, +inf, -inf) travel as the strings "NaN", "Infinity" and
"-Infinity", as in JavaScript and MLflow's protobuf JSON.
"""

from __future__ import annotations

import math
from typing import Any

from loopml.domain.audit import AuditEvent
from loopml.domain.deployments import Deployment, DeploymentRevision, DeploymentVersion, RolloutDecision
from loopml.domain.models import AliasChange, ModelVersion, ModelVersionStatus, RegisteredModel
from loopml.domain.tokens import Role, Token
from loopml.domain.tracking import ArtifactRecord, Dataset, Experiment, Metric, Run, RunStatus

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_float(value: object) -> float:
    """A metric value from JSON; raises ValueError (TypeError for non-numbers) on anything else."""
    if isinstance(value, bool):
        raise TypeError("a metric value must be a number, not a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value in _SPECIAL:
        return _SPECIAL[value]
    raise TypeError(f'a metric value must be a number or "NaN", "Infinity", "-Infinity", not {value!r}')


def experiment_to_json(e: Experiment) -> dict[str, Any]:
    return {
        "id": e.id,
        "project": e.project,
        "name": e.name,
        "created_at": e.created_at,
        "deleted_at": e.deleted_at,
        "updated_at": e.updated_at,
        "tags": e.tags,
    }


def experiment_from_json(d: dict[str, Any]) -> Experiment:
    return Experiment(
        id=d["id"],
        project=d["project"],
        name=d["name"],
        created_at=d["created_at"],
        deleted_at=d.get("deleted_at"),
        updated_at=d.get("updated_at"),
        tags=dict(d.get("tags") or {}),
    )


def run_to_json(r: Run) -> dict[str, Any]:
    return {
        "id": r.id,
        "experiment_id": r.experiment_id,
        "name": r.name,
        "status": r.status.value,
        "start_time": r.start_time,
        "end_time": r.end_time,
        "parent_run_id": r.parent_run_id,
        "params": r.params,
        "metrics": {k: encode_float(v) for k, v in r.metrics.items()},
        "tags": r.tags,
        "deleted_at": r.deleted_at,
    }


def run_from_json(d: dict[str, Any]) -> Run:
    return Run(
        id=d["id"],
        experiment_id=d["experiment_id"],
        name=d["name"],
        status=RunStatus(d["status"]),
        start_time=d["start_time"],
        end_time=d["end_time"],
        parent_run_id=d["parent_run_id"],
        params=dict(d["params"]),
        metrics={k: decode_float(v) for k, v in d["metrics"].items()},
        tags=dict(d["tags"]),
        deleted_at=d.get("deleted_at"),
    )


def metric_to_json(m: Metric) -> dict[str, Any]:
    return {"key": m.key, "value": encode_float(m.value), "step": m.step, "timestamp": m.timestamp}


def metric_from_json(d: dict[str, Any]) -> Metric:
    return Metric(key=d["key"], value=decode_float(d["value"]), step=d["step"], timestamp=d["timestamp"])


def dataset_to_json(d: Dataset) -> dict[str, Any]:
    return {
        "digest": d.digest,
        "name": d.name,
        "schema": [list(c) for c in d.schema],
        "rows": d.rows,
        "source": d.source,
        "created_at": d.created_at,
        "role": d.role,
    }


def dataset_from_json(d: dict[str, Any]) -> Dataset:
    return Dataset(
        digest=d["digest"],
        name=d["name"],
        schema=tuple((str(c), str(t)) for c, t in d["schema"]),
        rows=d["rows"],
        source=d["source"],
        created_at=d["created_at"],
        role=d.get("role"),
    )


def artifact_to_json(a: ArtifactRecord) -> dict[str, Any]:
    return {
        "run_id": a.run_id,
        "path": a.path,
        "digest": a.digest,
        "size": a.size,
        "created_at": a.created_at,
    }


def artifact_from_json(d: dict[str, Any]) -> ArtifactRecord:
    return ArtifactRecord(
        run_id=d["run_id"], path=d["path"], digest=d["digest"], size=d["size"], created_at=d["created_at"]
    )


def token_to_json(t: Token) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "role": t.role.value,
        "project": t.project,
        "created_at": t.created_at,
        "revoked_at": t.revoked_at,
    }


def token_from_json(d: dict[str, Any]) -> Token:
    return Token(
        id=d["id"],
        name=d["name"],
        role=Role(d["role"]),
        project=d["project"],
        created_at=d["created_at"],
        revoked_at=d["revoked_at"],
    )


def audit_to_json(e: AuditEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "time": e.time,
        "actor": e.actor,
        "action": e.action,
        "entity_type": e.entity_type,
        "entity_id": e.entity_id,
        "before": e.before,
        "after": e.after,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def audit_from_json(d: dict[str, Any]) -> AuditEvent:
    return AuditEvent(**d)


def alias_change_to_json(c: AliasChange) -> dict[str, Any]:
    return {
        "seq": c.seq,
        "time": c.time,
        "actor": c.actor,
        "alias": c.alias,
        "version": c.version,
        "previous": c.previous,
        "reason": c.reason,
    }


def alias_change_from_json(d: dict[str, Any]) -> AliasChange:
    return AliasChange(**d)


def registered_model_to_json(m: RegisteredModel) -> dict[str, Any]:
    return {
        "name": m.name,
        "project": m.project,
        "description": m.description,
        "owner": m.owner,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
        "tags": m.tags,
        "aliases": m.aliases,
        "latest_version": m.latest_version,
    }


def registered_model_from_json(d: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        name=d["name"],
        project=d["project"],
        description=d["description"],
        owner=d["owner"],
        created_at=d["created_at"],
        updated_at=d["updated_at"],
        tags=dict(d["tags"]),
        aliases={str(k): int(v) for k, v in d["aliases"].items()},
        latest_version=d["latest_version"],
    )


def model_version_to_json(v: ModelVersion) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": v.version,
        "run_id": v.run_id,
        "artifact_path": v.artifact_path,
        "manifest_digest": v.manifest_digest,
        "flavor": v.flavor,
        "status": v.status.value,
        "description": v.description,
        "created_at": v.created_at,
        "created_by": v.created_by,
        "tags": v.tags,
        "metrics": {k: encode_float(x) for k, x in v.metrics.items()},
        "datasets": [{"digest": digest, "role": role} for digest, role in v.datasets],
        "signature": v.signature,
        "aliases": list(v.aliases),
    }


def model_version_from_json(d: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        name=d["name"],
        version=d["version"],
        run_id=d["run_id"],
        artifact_path=d["artifact_path"],
        manifest_digest=d["manifest_digest"],
        flavor=d["flavor"],
        status=ModelVersionStatus(d["status"]),
        description=d["description"],
        created_at=d["created_at"],
        created_by=d["created_by"],
        tags=dict(d["tags"]),
        metrics={k: decode_float(x) for k, x in d["metrics"].items()},
        datasets=tuple((str(x["digest"]), str(x["role"])) for x in d["datasets"]),
        signature=d["signature"],
        aliases=tuple(d["aliases"]),
    )


def deployment_to_json(d: Deployment) -> dict[str, Any]:
    return {
        "name": d.name,
        "project": d.project,
        "strategy": d.strategy,
        "revision": d.revision,
        "versions": [{"model": v.model, "version": v.version, "weight": v.weight, "role": v.role} for v in d.versions],
        "state": d.state,
        "canary_steps": list(d.canary_steps),
        "step_index": d.step_index,
        "analysis_seconds": d.analysis_seconds,
        "thresholds": d.thresholds,
        "sticky_key": d.sticky_key,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "failures": d.failures,
        "follows_alias": d.follows_alias,
        "feature_service": d.feature_service,
        "missing_features": d.missing_features,
    }


def deployment_from_json(d: dict[str, Any]) -> Deployment:
    return Deployment(
        name=d["name"],
        project=d["project"],
        strategy=d["strategy"],
        revision=d["revision"],
        versions=tuple(
            DeploymentVersion(model=v["model"], version=v["version"], weight=v["weight"], role=v["role"])
            for v in d["versions"]
        ),
        state=d["state"],
        canary_steps=tuple(d.get("canary_steps", ())),
        step_index=d.get("step_index", 0),
        analysis_seconds=d.get("analysis_seconds", 300),
        thresholds=dict(d.get("thresholds") or {}),
        sticky_key=d.get("sticky_key"),
        created_at=d.get("created_at", 0),
        updated_at=d.get("updated_at", 0),
        failures=d.get("failures", 0),
        follows_alias=d.get("follows_alias"),
        feature_service=d.get("feature_service"),
        missing_features=d.get("missing_features", "refuse"),
    )


def deployment_revision_to_json(r: DeploymentRevision) -> dict[str, Any]:
    return {
        "revision": r.revision,
        "actor": r.actor,
        "reason": r.reason,
        "created_at": r.created_at,
        "deployment": deployment_to_json(r.deployment),
    }


def deployment_revision_from_json(d: dict[str, Any]) -> DeploymentRevision:
    return DeploymentRevision(
        deployment=deployment_from_json(d["deployment"]),
        revision=d["revision"],
        actor=d["actor"],
        reason=d["reason"],
        created_at=d["created_at"],
    )


def rollout_decision_to_json(r: RolloutDecision) -> dict[str, Any]:
    return {
        "deployment": r.deployment,
        "revision": r.revision,
        "step": r.step,
        "outcome": r.outcome,
        "action": r.action,
        "metrics": r.metrics,
        "reason": r.reason,
        "time": r.time,
    }


def rollout_decision_from_json(d: dict[str, Any]) -> RolloutDecision:
    return RolloutDecision(
        deployment=d["deployment"],
        revision=d["revision"],
        step=d["step"],
        outcome=d["outcome"],
        metrics=dict(d["metrics"]),
        reason=d["reason"],
        time=d["time"],
        action=d.get("action", "hold"),
    )
