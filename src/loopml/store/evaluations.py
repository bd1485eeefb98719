"""Evaluations and gate results of model versions, and the aliases that require a passed gate."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

import orjson
from sqlalchemy import Connection, delete, insert, select

from loopml.domain.evaluation import (
    Evaluation,
    GateResult,
    check_from_json,
    check_to_json,
    comparison_from_json,
    comparison_to_json,
)
from loopml.domain.wire import decode_float, encode_float
from loopml.errors import NotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.registered_models import ModelRow
from loopml.store.schema import alias_gate_requirements, evaluations, gate_results

__all__ = ["EvaluationRepository"]


def _floats(values: dict[str, float]) -> dict[str, float | str]:
    return {k: encode_float(v) for k, v in values.items()}


def _unfloats(values: dict[str, object]) -> dict[str, float]:
    return {k: decode_float(v) for k, v in values.items()}


class EvaluationRepository:
    """Evaluations (`evaluations`), gate results (`gate_results`) and gate requirements of aliases."""

    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    # -- evaluations -------------------------------------------------------------------------------

    def add(self, model: ModelRow, manifest_digest: str, evaluation: Evaluation) -> None:
        body = {
            "metrics": _floats(evaluation.metrics),
            "slices": {c: {v: _floats(m) for v, m in g.items()} for c, g in evaluation.slices.items()},
            "comparison": [comparison_to_json(c) for c in evaluation.comparison],
        }
        self._conn.execute(
            insert(evaluations).values(
                id=evaluation.id,
                model_id=model.id,
                version=evaluation.version,
                manifest_digest=manifest_digest,
                project=model.project,
                task=evaluation.task,
                label=evaluation.label,
                dataset_digest=evaluation.dataset_digest,
                dataset_source=evaluation.dataset_source,
                rows=evaluation.rows,
                baseline_version=evaluation.baseline_version,
                body=orjson.dumps(body).decode(),
                created_at=evaluation.created_at,
                created_by=evaluation.created_by,
            )
        )
        self._audit.record(
            "model.evaluate",
            "evaluation",
            evaluation.id,
            after={
                "model": model.name,
                "version": evaluation.version,
                "dataset_digest": evaluation.dataset_digest,
                "rows": evaluation.rows,
                "baseline_version": evaluation.baseline_version,
                "metrics": body["metrics"],
            },
            project=model.project,
        )

    def _evaluation(self, row: object, name: str) -> Evaluation:
        body = orjson.loads(row.body)  # type: ignore[attr-defined]
        return Evaluation(
            id=row.id,  # type: ignore[attr-defined]
            name=name,
            version=row.version,  # type: ignore[attr-defined]
            project=row.project,  # type: ignore[attr-defined]
            task=row.task,  # type: ignore[attr-defined]
            label=row.label,  # type: ignore[attr-defined]
            dataset_digest=row.dataset_digest,  # type: ignore[attr-defined]
            dataset_source=row.dataset_source,  # type: ignore[attr-defined]
            rows=row.rows,  # type: ignore[attr-defined]
            metrics=_unfloats(body["metrics"]),
            slices={c: {v: _unfloats(m) for v, m in g.items()} for c, g in body["slices"].items()},
            baseline_version=row.baseline_version,  # type: ignore[attr-defined]
            comparison=tuple(comparison_from_json(c) for c in body["comparison"]),
            created_at=row.created_at,  # type: ignore[attr-defined]
            created_by=row.created_by,  # type: ignore[attr-defined]
        )

    def get(self, evaluation_id: str) -> tuple[int, str, Evaluation]:
        """(model id, package digest, evaluation) of `evaluation_id`; the name is filled in by the caller."""
        row = self._conn.execute(select(evaluations).where(evaluations.c.id == evaluation_id)).one_or_none()
        if row is None:
            raise NotFound(f"evaluation {evaluation_id!r} does not exist")
        return row.model_id, row.manifest_digest, self._evaluation(row, "")

    def list(
        self, model: ModelRow, version: int | None, manifest_digest: str | None, limit: int
    ) -> builtins.list[Evaluation]:
        """Newest first."""
        query = select(evaluations).where(evaluations.c.model_id == model.id)
        if version is not None:
            query = query.where(evaluations.c.version == version)
        if manifest_digest is not None:
            query = query.where(evaluations.c.manifest_digest == manifest_digest)
        query = query.order_by(evaluations.c.created_at.desc(), evaluations.c.id.desc()).limit(limit)
        return [self._evaluation(row, model.name) for row in self._conn.execute(query)]

    # -- gate results ------------------------------------------------------------------------------

    def add_gate_result(self, model: ModelRow, manifest_digest: str, result: GateResult) -> None:
        self._conn.execute(
            insert(gate_results).values(
                id=result.id,
                model_id=model.id,
                version=result.version,
                manifest_digest=manifest_digest,
                project=model.project,
                passed=result.passed,
                policy_digest=result.policy_digest,
                policy=result.policy,
                evaluation_id=result.evaluation_id,
                checks=orjson.dumps([check_to_json(c) for c in result.checks]).decode(),
                created_at=result.created_at,
                created_by=result.created_by,
            )
        )
        self._audit.record(
            "model.gate",
            "gate_result",
            result.id,
            after={
                "model": model.name,
                "version": result.version,
                "passed": result.passed,
                "policy_digest": result.policy_digest,
                "evaluation_id": result.evaluation_id,
                "failed": [c.name for c in result.failed],
            },
            project=model.project,
        )

    def _gate_result(self, row: object, name: str) -> GateResult:
        return GateResult(
            id=row.id,  # type: ignore[attr-defined]
            name=name,
            version=row.version,  # type: ignore[attr-defined]
            project=row.project,  # type: ignore[attr-defined]
            passed=bool(row.passed),  # type: ignore[attr-defined]
            policy_digest=row.policy_digest,  # type: ignore[attr-defined]
            policy=row.policy,  # type: ignore[attr-defined]
            evaluation_id=row.evaluation_id,  # type: ignore[attr-defined]
            checks=tuple(check_from_json(c) for c in orjson.loads(row.checks)),  # type: ignore[attr-defined]
            created_at=row.created_at,  # type: ignore[attr-defined]
            created_by=row.created_by,  # type: ignore[attr-defined]
        )

    def get_gate_result(self, result_id: str) -> tuple[int, GateResult]:
        row = self._conn.execute(select(gate_results).where(gate_results.c.id == result_id)).one_or_none()
        if row is None:
            raise NotFound(f"gate result {result_id!r} does not exist")
        return row.model_id, self._gate_result(row, "")

    def gate_results(
        self, model: ModelRow, version: int | None, manifest_digest: str | None, limit: int
    ) -> builtins.list[GateResult]:
        """Newest first."""
        query = select(gate_results).where(gate_results.c.model_id == model.id)
        if version is not None:
            query = query.where(gate_results.c.version == version)
        if manifest_digest is not None:
            query = query.where(gate_results.c.manifest_digest == manifest_digest)
        query = query.order_by(gate_results.c.created_at.desc(), gate_results.c.id.desc()).limit(limit)
        return [self._gate_result(row, model.name) for row in self._conn.execute(query)]

    # -- aliases that require a passed gate --------------------------------------------------------

    def required_aliases(self, model: ModelRow) -> builtins.list[str]:
        query = select(alias_gate_requirements.c.alias).where(alias_gate_requirements.c.model_id == model.id)
        return sorted(self._conn.execute(query).scalars())

    def require_gate(self, model: ModelRow, alias: str, required: bool) -> bool:
        """Add or remove the requirement; True if that changed anything (audited then)."""
        present = alias in self.required_aliases(model)
        if present == required:
            return False
        if required:
            self._conn.execute(
                insert(alias_gate_requirements).values(
                    model_id=model.id, alias=alias, created_at=now_ms(), created_by=self._audit.actor
                )
            )
        else:
            self._conn.execute(
                delete(alias_gate_requirements).where(
                    alias_gate_requirements.c.model_id == model.id, alias_gate_requirements.c.alias == alias
                )
            )
        self._audit.record(
            "model.require_gate",
            "model",
            model.name,
            before={"alias": alias, "require_gate": present},
            after={"alias": alias, "require_gate": required},
            project=model.project,
        )
        return True

    def drop_requirements(self, model: ModelRow) -> None:
        """Forget the model's requirements (the model is being deleted; its deletion is the audit event)."""
        self._conn.execute(delete(alias_gate_requirements).where(alias_gate_requirements.c.model_id == model.id))

    def evaluation_ids(self, ids: Sequence[str]) -> set[str]:
        query = select(evaluations.c.id).where(evaluations.c.id.in_(list(ids)))
        return set(self._conn.execute(query).scalars())
