"""MLflow 3 logged models with their tags and params (see `schema.logged_models`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, delete, insert, select, update

from loopml.domain import LoggedModelRecord, LoggedModelStatus
from loopml.errors import LoggedModelNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.schema import experiments, logged_model_params, logged_model_tags, logged_models, projects
from loopml.store.upsert import upsert


class LoggedModelRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def create(self, model: LoggedModelRecord, project: str) -> None:
        self._conn.execute(
            insert(logged_models).values(
                id=model.id,
                experiment_id=model.experiment_id,
                run_id=model.run_id,
                name=model.name,
                model_type=model.model_type,
                status=model.status.value,
                status_message=model.status_message,
                manifest_digest=None,
                flavor=None,
                created_at=model.created_at,
                updated_at=model.updated_at,
            )
        )
        for table, values in ((logged_model_tags, model.tags), (logged_model_params, model.params)):
            if values:
                self._conn.execute(
                    insert(table), [{"model_id": model.id, "key": k, "value": v} for k, v in values.items()]
                )
        self._audit.record(
            "logged_model.create",
            "logged_model",
            model.id,
            after={"run_id": model.run_id, "name": model.name, "tags": model.tags, "params": model.params},
            project=project,
        )

    def project_of(self, model_id: str) -> str | None:
        return self._conn.execute(
            select(projects.c.name)
            .select_from(logged_models)
            .join(experiments, experiments.c.id == logged_models.c.experiment_id)
            .join(projects, projects.c.id == experiments.c.project_id)
            .where(logged_models.c.id == model_id)
        ).scalar_one_or_none()

    def get(self, model_id: str) -> LoggedModelRecord:
        found = self.get_many([model_id])
        if not found:
            raise LoggedModelNotFound(f"logged model {model_id!r} does not exist")
        return found[0]

    def get_many(self, model_ids: Sequence[str]) -> list[LoggedModelRecord]:
        if not model_ids:
            return []
        ids = list(model_ids)
        extra: dict[str, dict[str, dict[str, str]]] = {"tags": defaultdict(dict), "params": defaultdict(dict)}
        for name, table in (("tags", logged_model_tags), ("params", logged_model_params)):
            for model_id, key, value in self._conn.execute(
                select(table.c.model_id, table.c.key, table.c.value).where(table.c.model_id.in_(ids))
            ).all():
                extra[name][model_id][key] = value
        by_id = {}
        for row in self._conn.execute(select(logged_models).where(logged_models.c.id.in_(ids))):
            by_id[row.id] = LoggedModelRecord(
                id=row.id,
                experiment_id=row.experiment_id,
                run_id=row.run_id,
                name=row.name,
                model_type=row.model_type,
                status=LoggedModelStatus(row.status),
                status_message=row.status_message,
                manifest_digest=row.manifest_digest,
                flavor=row.flavor,
                created_at=row.created_at,
                updated_at=row.updated_at,
                tags=dict(extra["tags"].get(row.id, {})),
                params=dict(extra["params"].get(row.id, {})),
            )
        return [by_id[i] for i in ids if i in by_id]

    def finalize(
        self,
        model_id: str,
        status: LoggedModelStatus,
        message: str,
        manifest_digest: str | None,
        flavor: str | None,
        project: str,
    ) -> None:
        self._conn.execute(
            update(logged_models)
            .where(logged_models.c.id == model_id)
            .values(
                status=status.value,
                status_message=message,
                manifest_digest=manifest_digest,
                flavor=flavor,
                updated_at=now_ms(),
            )
        )
        self._audit.record(
            "logged_model.finalize",
            "logged_model",
            model_id,
            after={"status": status.value, "manifest_digest": manifest_digest, "flavor": flavor, "message": message},
            project=project,
        )

    def set_values(self, model_id: str, kind: str, values: Mapping[str, str], project: str) -> None:
        """Set tags (`kind` "tags", merged) or params ("params") of a logged model."""
        if not values:
            return
        table = logged_model_tags if kind == "tags" else logged_model_params
        upsert(
            self._conn,
            table,
            [{"model_id": model_id, "key": k, "value": v} for k, v in values.items()],
            keys=("model_id", "key"),
            update=("value",),
        )
        self._conn.execute(update(logged_models).where(logged_models.c.id == model_id).values(updated_at=now_ms()))
        self._audit.record(f"logged_model.set_{kind}", "logged_model", model_id, after=dict(values), project=project)

    def delete_tag(self, model_id: str, key: str, project: str) -> None:
        match = (logged_model_tags.c.model_id == model_id) & (logged_model_tags.c.key == key)
        before = self._conn.execute(select(logged_model_tags.c.value).where(match)).scalar_one_or_none()
        if before is None:
            return
        self._conn.execute(delete(logged_model_tags).where(match))
        self._audit.record("logged_model.delete_tag", "logged_model", model_id, before={key: before}, project=project)

    def search_ids(
        self, experiment_ids: Sequence[int], limit: int, offset: int, equals: Mapping[str, str] | None = None
    ) -> list[str]:
        """Newest first; `equals` maps columns (name, run_id, model_type) to the value they must have."""
        query = (
            select(logged_models.c.id)
            .where(logged_models.c.experiment_id.in_(list(experiment_ids)))
            .where(*(logged_models.c[column] == value for column, value in (equals or {}).items()))
            .order_by(logged_models.c.created_at.desc(), logged_models.c.id)
            .limit(limit)
            .offset(offset)
        )
        return [str(r) for r in self._conn.execute(query).scalars()]
