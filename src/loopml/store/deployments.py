"""Deployments: the current revision of each, the history of every revision, and rollout decisions.

Every new revision and every decision is audited in the same transaction: `deployment.update` with a
before/after summary (versions, weights, state), `deployment.rollout_decision` with the analysis numbers.
"""

from __future__ import annotations

import builtins
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from loopml.domain import Deployment, DeploymentRevision, Project, RolloutDecision
from loopml.domain.wire import deployment_from_json, deployment_to_json, rollout_decision_to_json
from loopml.errors import DeploymentNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.notifications import notify_deployment_changed
from loopml.store.schema import deployment_revisions, deployments, projects, rollout_decisions


def summary(deployment: Deployment | None) -> dict[str, Any] | None:
    """What an audit row says about a deployment: enough to see who served what, at which weight."""
    if deployment is None:
        return None
    return {
        "revision": deployment.revision,
        "strategy": deployment.strategy,
        "state": deployment.state,
        "versions": [
            {"model": v.model, "version": v.version, "weight": v.weight, "role": v.role} for v in deployment.versions
        ],
        "step_index": deployment.step_index,
    }


def _spec(deployment: Deployment) -> str:
    return orjson.dumps(deployment_to_json(deployment)).decode()


def _deployment(spec: str, project: str) -> Deployment:
    return replace(deployment_from_json(orjson.loads(spec)), project=project)


class DeploymentRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def _select(self) -> Any:
        return select(deployments.c.id, deployments.c.spec, projects.c.name.label("project")).join(
            projects, projects.c.id == deployments.c.project_id
        )

    def find(self, name: str, lock: bool = False) -> Deployment | None:
        """The current revision of deployment `name`; with `lock`, its row stays locked until the
        transaction ends (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers)."""
        query = self._select().where(deployments.c.name == name)
        if lock:
            query = query.with_for_update(of=deployments)
        row = self._conn.execute(query).one_or_none()
        return None if row is None else _deployment(row.spec, row.project)

    def get(self, name: str) -> Deployment:
        found = self.find(name)
        if found is None:
            raise DeploymentNotFound(f"deployment {name!r} does not exist (see `loopml deploy list`)")
        return found

    def list(self, project: str | None = None) -> list[Deployment]:
        query = self._select().order_by(deployments.c.name)
        if project is not None:
            query = query.where(projects.c.name == project)
        return [_deployment(r.spec, r.project) for r in self._conn.execute(query)]

    def save(self, project: Project, deployment: Deployment, reason: str = "", at: int | None = None) -> Deployment:
        """Store `deployment` as the next revision of its name (revision 1 if new), with its history row and
        an audit event; returns it as stored (revision and times set; `at` defaults to now). Call
        `find(name, lock=True)` first when the new revision is derived from the current one."""
        at = now_ms() if at is None else at
        row = self._conn.execute(
            select(deployments.c.id, deployments.c.spec).where(deployments.c.name == deployment.name).with_for_update()
        ).one_or_none()
        before = None if row is None else _deployment(row.spec, project.name)
        revision = 1 if before is None else before.revision + 1
        stored = replace(
            deployment,
            project=project.name,
            revision=revision,
            created_at=at if before is None else before.created_at,
            updated_at=at,
        )
        values = {
            "strategy": stored.strategy,
            "revision": revision,
            "state": stored.state,
            "spec": _spec(stored),
            "updated_at": at,
        }
        if row is None:
            deployment_id = self._conn.execute(
                insert(deployments)
                .values(project_id=project.id, name=stored.name, created_at=at, **values)
                .returning(deployments.c.id)
            ).scalar_one()
        else:
            deployment_id = row.id
            self._conn.execute(update(deployments).where(deployments.c.id == deployment_id).values(**values))
        self._conn.execute(
            insert(deployment_revisions).values(
                deployment_id=deployment_id,
                revision=revision,
                spec=values["spec"],
                actor=self._audit.actor,
                reason=reason,
                created_at=at,
            )
        )
        after = summary(stored)
        assert after is not None
        after["reason"] = reason
        action = "deployment.create" if before is None else "deployment.update"
        self._audit.record(action, "deployment", stored.name, before=summary(before), after=after)
        notify_deployment_changed(self._conn, stored.name)
        return stored

    def history(self, name: str, limit: int = 100) -> builtins.list[DeploymentRevision]:
        """The newest `limit` revisions of `name`, newest first."""
        current = self.get(name)
        query = (
            select(deployment_revisions)
            .join(deployments, deployments.c.id == deployment_revisions.c.deployment_id)
            .where(deployments.c.name == name)
            .order_by(deployment_revisions.c.revision.desc())
            .limit(limit)
        )
        return [
            DeploymentRevision(
                deployment=_deployment(r.spec, current.project),
                revision=r.revision,
                actor=r.actor,
                reason=r.reason,
                created_at=r.created_at,
            )
            for r in self._conn.execute(query)
        ]

    def record_decision(self, decision: RolloutDecision) -> RolloutDecision:
        """Keep a rollout decision with its numbers, audited as `deployment.rollout_decision`."""
        deployment_id = self._conn.execute(
            select(deployments.c.id).where(deployments.c.name == decision.deployment)
        ).scalar_one_or_none()
        if deployment_id is None:
            raise DeploymentNotFound(f"deployment {decision.deployment!r} does not exist")
        self._conn.execute(
            insert(rollout_decisions).values(
                deployment_id=deployment_id,
                revision=decision.revision,
                step=decision.step,
                outcome=decision.outcome,
                action=decision.action,
                metrics=orjson.dumps(decision.metrics).decode(),
                reason=decision.reason,
                time=decision.time,
            )
        )
        self._audit.record(
            "deployment.rollout_decision", "deployment", decision.deployment, after=rollout_decision_to_json(decision)
        )
        return decision

    def decisions(self, name: str, limit: int = 100) -> builtins.list[RolloutDecision]:
        """The newest `limit` decisions about `name`, oldest first."""
        self.get(name)
        query = (
            select(rollout_decisions)
            .join(deployments, deployments.c.id == rollout_decisions.c.deployment_id)
            .where(deployments.c.name == name)
            .order_by(rollout_decisions.c.time.desc(), rollout_decisions.c.id.desc())
            .limit(limit)
        )
        found = [
            RolloutDecision(
                deployment=name,
                revision=r.revision,
                step=r.step,
                outcome=r.outcome,
                metrics=orjson.loads(r.metrics),
                reason=r.reason,
                time=r.time,
                action=r.action,
            )
            for r in self._conn.execute(query)
        ]
        return found[::-1]
