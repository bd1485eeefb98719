"""Feature-store records: definition versions, training-set lineage, materialization progress, pushes."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, insert, select, update

from loopml.domain import Project
from loopml.domain.features import DefinitionKind, FeatureLineage, Materialization, StoredDefinition
from loopml.errors import NotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.schema import (
    deployment_revisions,
    deployments,
    feature_definitions,
    feature_materializations,
    feature_pushes,
    feature_training_sets,
    model_version_datasets,
    projects,
    registered_models,
)
from loopml.store.upsert import upsert


def _definition(row: Any, project: str) -> StoredDefinition:
    return StoredDefinition(
        project=project,
        kind=row.kind,
        name=row.name,
        version=row.version,
        digest=row.digest,
        spec=orjson.loads(row.spec),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _materialization(row: Any, project: str) -> Materialization:
    return Materialization(
        project=project,
        view=row.view,
        version=row.version,
        store=row.store,
        start_ms=row.start_ms,
        end_ms=row.end_ms,
        buckets=row.buckets,
        done_buckets=row.done_buckets,
        rows=row.rows,
        status=row.status,
        updated_at=row.updated_at,
    )


class FeatureRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    # -- definitions -------------------------------------------------------------------------------

    def current(self, project: Project) -> list[StoredDefinition]:
        """The current (highest, not deleted) version of every definition of `project`."""
        latest = (
            select(
                feature_definitions.c.kind,
                feature_definitions.c.name,
                func.max(feature_definitions.c.version).label("version"),
            )
            .where(feature_definitions.c.project_id == project.id)
            .group_by(feature_definitions.c.kind, feature_definitions.c.name)
            .subquery()
        )
        query = (
            select(feature_definitions)
            .join(
                latest,
                and_(
                    feature_definitions.c.kind == latest.c.kind,
                    feature_definitions.c.name == latest.c.name,
                    feature_definitions.c.version == latest.c.version,
                ),
            )
            .where(feature_definitions.c.project_id == project.id, feature_definitions.c.deleted_at.is_(None))
            .order_by(feature_definitions.c.kind, feature_definitions.c.name)
        )
        return [_definition(row, project.name) for row in self._conn.execute(query)]

    def get(self, project: Project, kind: DefinitionKind, name: str, version: int | None = None) -> StoredDefinition:
        """A version of a definition (the current one when `version` is None)."""
        where = [
            feature_definitions.c.project_id == project.id,
            feature_definitions.c.kind == kind,
            feature_definitions.c.name == name,
        ]
        if version is not None:
            where.append(feature_definitions.c.version == version)
        query = select(feature_definitions).where(*where).order_by(feature_definitions.c.version.desc()).limit(1)
        row = self._conn.execute(query).one_or_none()
        if row is None or (version is None and row.deleted_at is not None):
            which = f"version {version} of " if version is not None else ""
            raise NotFound(f"{which}{kind.replace('_', ' ')} {name!r} does not exist in project {project.name!r}")
        return _definition(row, project.name)

    def save(
        self, project: Project, kind: DefinitionKind, name: str, digest: str, spec: dict[str, Any], actor: str
    ) -> StoredDefinition:
        """Store `spec` as the next version of `kind` `name`."""
        last = self._conn.execute(
            select(func.max(feature_definitions.c.version)).where(
                feature_definitions.c.project_id == project.id,
                feature_definitions.c.kind == kind,
                feature_definitions.c.name == name,
            )
        ).scalar_one_or_none()
        version = (last or 0) + 1
        created = now_ms()
        self._conn.execute(
            insert(feature_definitions).values(
                project_id=project.id,
                kind=kind,
                name=name,
                version=version,
                digest=digest,
                spec=orjson.dumps(spec).decode(),
                created_at=created,
                created_by=actor,
            )
        )
        action = "create" if version == 1 else "update"
        self._audit.record(
            f"feature.{action}",
            kind,
            f"{name}/{version}",
            after={"digest": digest, "version": version},
            project=project.name,
        )
        return StoredDefinition(project.name, kind, name, version, digest, spec, created, actor)

    def delete(self, project: Project, kind: DefinitionKind, name: str) -> None:
        current = self.get(project, kind, name)
        self._conn.execute(
            update(feature_definitions)
            .where(
                feature_definitions.c.project_id == project.id,
                feature_definitions.c.kind == kind,
                feature_definitions.c.name == name,
                feature_definitions.c.version == current.version,
            )
            .values(deleted_at=now_ms())
        )
        self._audit.record(
            "feature.delete", kind, f"{name}/{current.version}", before={"digest": current.digest}, project=project.name
        )

    # -- lineage -----------------------------------------------------------------------------------

    def link_training_set(self, project: Project, digest: str, views: Sequence[tuple[str, int]]) -> None:
        known = {
            (row.view, row.version)
            for row in self._conn.execute(
                select(feature_training_sets.c.view, feature_training_sets.c.version).where(
                    feature_training_sets.c.digest == digest, feature_training_sets.c.project_id == project.id
                )
            )
        }
        new = [(view, version) for view, version in sorted(set(views)) if (view, version) not in known]
        if not new:
            return
        self._conn.execute(
            insert(feature_training_sets),
            [{"digest": digest, "project_id": project.id, "view": v, "version": n} for v, n in new],
        )
        self._audit.record(
            "feature.training_set",
            "dataset",
            digest,
            after={"views": [f"{v}/{n}" for v, n in new]},
            project=project.name,
        )

    def lineage(self, project: Project, digest: str) -> FeatureLineage:
        rows = self._conn.execute(
            select(feature_training_sets.c.view, feature_training_sets.c.version)
            .where(feature_training_sets.c.digest == digest, feature_training_sets.c.project_id == project.id)
            .order_by(feature_training_sets.c.view, feature_training_sets.c.version)
        )
        return FeatureLineage(digest, tuple((row.view, row.version) for row in rows))

    def deployments_using(self, project: Project, view: str) -> builtins.list[str]:
        """Deployments of `project` whose current model versions were trained on a training set joined from
        any version of `view`, or whose feature service reads `view`."""
        trained = (
            select(registered_models.c.name, model_version_datasets.c.version)
            .join(model_version_datasets, model_version_datasets.c.model_id == registered_models.c.id)
            .join(feature_training_sets, feature_training_sets.c.digest == model_version_datasets.c.digest)
            .where(feature_training_sets.c.project_id == project.id, feature_training_sets.c.view == view)
        )
        models = {(row.name, row.version) for row in self._conn.execute(trained)}
        services = {
            d.name
            for d in self.current(project)
            if d.kind == "feature_service" and any(ref.split(":")[0] == view for ref in d.spec["features"])
        }
        if not models and not services:
            return []
        current = (
            select(deployments.c.name, deployment_revisions.c.spec)
            .join(projects, projects.c.id == deployments.c.project_id)
            .join(
                deployment_revisions,
                and_(
                    deployment_revisions.c.deployment_id == deployments.c.id,
                    deployment_revisions.c.revision == deployments.c.revision,
                ),
            )
            .where(projects.c.id == project.id)
        )
        using = []
        for row in self._conn.execute(current):
            spec = orjson.loads(row.spec)
            served = {(v["model"], v["version"]) for v in spec.get("versions", [])}
            if served & models or spec.get("feature_service") in services:
                using.append(row.name)
        return sorted(using)

    def deployments_serving(self, project: Project, service: str) -> builtins.list[str]:
        """Deployments of `project` whose replicas fetch the features of feature service `service`."""
        rows = self._conn.execute(
            select(deployments.c.name, deployments.c.spec).where(deployments.c.project_id == project.id)
        )
        return sorted(row.name for row in rows if orjson.loads(row.spec).get("feature_service") == service)

    # -- materialization ---------------------------------------------------------------------------

    def materialization(self, project: Project, view: str, store: str) -> tuple[Materialization | None, int | None]:
        """The last job of `view` into `store` and the watermark (end of the last finished job)."""
        row = self._conn.execute(
            select(feature_materializations).where(
                feature_materializations.c.project_id == project.id,
                feature_materializations.c.view == view,
                feature_materializations.c.store == store,
            )
        ).one_or_none()
        if row is None:
            return None, None
        return _materialization(row, project.name), row.watermark_ms

    def save_materialization(self, project: Project, job: Materialization, watermark_ms: int | None) -> None:
        """Record a job's progress (not audited: bookkeeping of a job whose start and end are audited)."""
        row = {
            "project_id": project.id,
            "view": job.view,
            "store": job.store,
            "version": job.version,
            "start_ms": job.start_ms,
            "end_ms": job.end_ms,
            "buckets": job.buckets,
            "done_buckets": job.done_buckets,
            "rows": job.rows,
            "status": job.status,
            "watermark_ms": watermark_ms,
            "updated_at": now_ms(),
        }
        upsert(self._conn, feature_materializations, [row], ("project_id", "view", "store"), list(row)[3:])
        if job.done_buckets == 0 or job.finished:
            self._audit.record(
                "feature.materialize",
                "feature_view",
                job.view,
                after={
                    "store": job.store,
                    "start_ms": job.start_ms,
                    "end_ms": job.end_ms,
                    "status": job.status,
                    "rows": job.rows,
                },
                project=project.name,
            )

    # -- pushes ------------------------------------------------------------------------------------

    def add_push(self, project: Project, view: str, digest: str, rows: int, min_ts: int, max_ts: int) -> None:
        self._conn.execute(
            insert(feature_pushes).values(
                project_id=project.id,
                view=view,
                digest=digest,
                rows=rows,
                min_ts=min_ts,
                max_ts=max_ts,
                created_at=now_ms(),
            )
        )
        self._audit.record(
            "feature.push", "feature_view", view, after={"blob": digest, "rows": rows}, project=project.name
        )

    def pushes(self, project: Project, view: str) -> builtins.list[str]:
        """The blobs of the rows pushed to `view`, oldest first."""
        rows = self._conn.execute(
            select(feature_pushes.c.digest)
            .where(feature_pushes.c.project_id == project.id, feature_pushes.c.view == view)
            .order_by(feature_pushes.c.id)
        )
        return [row.digest for row in rows]
