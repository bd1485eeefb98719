"""Model versions (numbered per model, with tag, metric and dataset snapshots) and the aliases that point
at them. Every writer here expects the model's row to be locked by the caller (`unit.models.lock(name)`),
which is what makes version numbers and alias moves safe under concurrency."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, literal, select, tuple_, update

from loopml.domain import AliasChange, ModelVersion, ModelVersionStatus
from loopml.domain.search import OrderBy, SearchFilter
from loopml.errors import AliasNotFound, AlreadyExists, ModelVersionNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.model_search import build_version_search
from loopml.store.registered_models import ModelRow
from loopml.store.schema import (
    audit_log,
    latest_metrics,
    model_aliases,
    model_version_datasets,
    model_version_metrics,
    model_version_tags,
    model_versions,
    registered_models,
    run_datasets,
)
from loopml.store.upsert import upsert

VersionKey = tuple[int, int]
"""(model id, version number)."""


def _entity(model: ModelRow, version: int) -> str:
    return f"{model.name}/{version}"


class ModelVersionRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    # -- versions ----------------------------------------------------------------------------------

    def create(
        self,
        model: ModelRow,
        run_id: str,
        artifact_path: str,
        manifest_digest: str,
        flavor: str,
        signature: Mapping[str, Any] | None,
        description: str,
        tags: Mapping[str, str],
        created_by: str,
        *,
        number: int | None = None,
        created_at: int | None = None,
    ) -> int:
        """The next version of the (locked) model, from `run_id`: snapshots the run's latest metrics and its
        datasets. Returns the new version number: the highest so far plus one, or `number` when given (an
        import keeping another registry's numbers), which must be above the highest."""
        highest = self.highest(model)
        if number is not None and number <= highest:
            raise AlreadyExists(f"model {model.name!r} already has version {highest}; cannot add version {number}")
        version = highest + 1 if number is None else number
        at = now_ms() if created_at is None else created_at
        self._conn.execute(
            insert(model_versions).values(
                model_id=model.id,
                version=version,
                run_id=run_id,
                artifact_path=artifact_path,
                manifest_digest=manifest_digest,
                flavor=flavor,
                status=ModelVersionStatus.READY.value,
                description=description,
                signature=None if signature is None else orjson.dumps(signature, option=orjson.OPT_SORT_KEYS).decode(),
                created_at=at,
                created_by=created_by,
            )
        )
        if tags:
            self._conn.execute(
                insert(model_version_tags),
                [{"model_id": model.id, "version": version, "key": k, "value": v} for k, v in tags.items()],
            )
        self._conn.execute(
            insert(model_version_metrics).from_select(
                ["model_id", "version", "key", "value", "is_nan"],
                select(
                    literal(model.id),
                    literal(version),
                    latest_metrics.c.key,
                    latest_metrics.c.value,
                    latest_metrics.c.is_nan,
                ).where(latest_metrics.c.run_id == run_id),
            )
        )
        self._conn.execute(
            insert(model_version_datasets).from_select(
                ["model_id", "version", "digest", "role"],
                select(literal(model.id), literal(version), run_datasets.c.digest, run_datasets.c.role).where(
                    run_datasets.c.run_id == run_id
                ),
            )
        )
        self._conn.execute(update(registered_models).where(registered_models.c.id == model.id).values(updated_at=at))
        self._audit.record(
            "model_version.create",
            "model_version",
            _entity(model, version),
            after={
                "run_id": run_id,
                "artifact_path": artifact_path,
                "manifest_digest": manifest_digest,
                "flavor": flavor,
                "tags": dict(tags),
            },
        )
        return version

    def highest(self, model: ModelRow) -> int:
        """The highest version number the model has had (0 if none)."""
        return int(
            self._conn.execute(
                select(func.coalesce(func.max(model_versions.c.version), 0)).where(
                    model_versions.c.model_id == model.id
                )
            ).scalar_one()
        )

    def get(self, model: ModelRow, version: int) -> ModelVersion:
        found = self.get_many([(model.id, version)])
        if not found:
            raise ModelVersionNotFound(f"model {model.name!r} has no version {version}")
        return found[0]

    def get_many(self, keys: Sequence[VersionKey]) -> list[ModelVersion]:
        """Versions in the order of `keys` (missing ones are left out)."""
        if not keys:
            return []
        wanted = [(int(m), int(v)) for m, v in keys]

        def where(table: Any) -> Any:
            return tuple_(table.c.model_id, table.c.version).in_(wanted)

        version_tags: dict[VersionKey, dict[str, str]] = defaultdict(dict)
        metrics: dict[VersionKey, dict[str, float]] = defaultdict(dict)
        datasets: dict[VersionKey, list[tuple[str, str]]] = defaultdict(list)
        aliases: dict[VersionKey, list[str]] = defaultdict(list)
        for row in self._conn.execute(select(model_version_tags).where(where(model_version_tags))):
            version_tags[(row.model_id, row.version)][row.key] = row.value
        for row in self._conn.execute(select(model_version_metrics).where(where(model_version_metrics))):
            metrics[(row.model_id, row.version)][row.key] = math.nan if row.is_nan else float(row.value)
        for row in self._conn.execute(
            select(model_version_datasets)
            .where(where(model_version_datasets))
            .order_by(model_version_datasets.c.role, model_version_datasets.c.digest)
        ):
            datasets[(row.model_id, row.version)].append((row.digest, row.role))
        for row in self._conn.execute(
            select(model_aliases).where(where(model_aliases)).order_by(model_aliases.c.alias)
        ):
            aliases[(row.model_id, row.version)].append(row.alias)
        by_key: dict[VersionKey, ModelVersion] = {}
        query = (
            select(model_versions, registered_models.c.name)
            .join(registered_models, registered_models.c.id == model_versions.c.model_id)
            .where(where(model_versions))
        )
        for row in self._conn.execute(query):
            key = (row.model_id, row.version)
            by_key[key] = ModelVersion(
                name=row.name,
                version=row.version,
                run_id=row.run_id,
                artifact_path=row.artifact_path,
                manifest_digest=row.manifest_digest,
                flavor=row.flavor,
                status=ModelVersionStatus(row.status),
                description=row.description,
                created_at=row.created_at,
                created_by=row.created_by,
                tags=version_tags.get(key, {}),
                metrics=metrics.get(key, {}),
                datasets=tuple(datasets.get(key, ())),
                signature=None if row.signature is None else orjson.loads(row.signature),
                aliases=tuple(aliases.get(key, ())),
            )
        return [by_key[k] for k in wanted if k in by_key]

    def update(
        self,
        model: ModelRow,
        version: int,
        status: ModelVersionStatus | None,
        description: str | None,
        tags: Mapping[str, str] | None,
    ) -> ModelVersion:
        """Set the status, description and/or tags (tags are merged) of a version of the (locked) model."""
        current = self.get(model, version)
        match = (model_versions.c.model_id == model.id) & (model_versions.c.version == version)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        if status is not None and status is not current.status:
            self._conn.execute(update(model_versions).where(match).values(status=status.value))
            before["status"], after["status"] = current.status.value, status.value
        if description is not None and description != current.description:
            self._conn.execute(update(model_versions).where(match).values(description=description))
            before["description"], after["description"] = current.description, description
        changed = {k: v for k, v in (tags or {}).items() if current.tags.get(k) != v}
        if changed:
            upsert(
                self._conn,
                model_version_tags,
                [{"model_id": model.id, "version": version, "key": k, "value": v} for k, v in changed.items()],
                keys=("model_id", "version", "key"),
                update=("value",),
            )
            before["tags"] = {k: current.tags[k] for k in changed if k in current.tags}
            after["tags"] = changed
        if after:
            self._audit.record("model_version.update", "model_version", _entity(model, version), before, after)
        return self.get(model, version)

    def delete_tag(self, model: ModelRow, version: int, key: str) -> None:
        """Remove tag `key` of a version of the (locked) model (a key it does not have is a no-op)."""
        match = (
            (model_version_tags.c.model_id == model.id)
            & (model_version_tags.c.version == version)
            & (model_version_tags.c.key == key)
        )
        before = self._conn.execute(select(model_version_tags.c.value).where(match)).scalar_one_or_none()
        if before is None:
            return
        self._conn.execute(delete(model_version_tags).where(match))
        self._audit.record(
            "model_version.update", "model_version", _entity(model, version), {"tags": {key: before}}, {"tags": {}}
        )

    def delete(self, model: ModelRow, version: int) -> None:
        """Remove a version of the (locked) model with its snapshots and tags. The caller checks first that no
        alias or deployment uses it."""
        current = self.get(model, version)
        for table in (model_version_tags, model_version_metrics, model_version_datasets):
            self._conn.execute(delete(table).where((table.c.model_id == model.id) & (table.c.version == version)))
        self._conn.execute(
            delete(model_versions).where(
                (model_versions.c.model_id == model.id) & (model_versions.c.version == version)
            )
        )
        self._conn.execute(
            update(registered_models).where(registered_models.c.id == model.id).values(updated_at=now_ms())
        )
        self._audit.record(
            "model_version.delete",
            "model_version",
            _entity(model, version),
            before={
                "run_id": current.run_id,
                "artifact_path": current.artifact_path,
                "manifest_digest": current.manifest_digest,
                "status": current.status.value,
            },
            after=None,
            project=model.project,
        )

    def versions(self, model: ModelRow) -> list[int]:
        """Every version number of the model, lowest first."""
        rows = self._conn.execute(
            select(model_versions.c.version)
            .where(model_versions.c.model_id == model.id)
            .order_by(model_versions.c.version)
        )
        return [int(v) for v in rows.scalars()]

    def latest_ready(self, model: ModelRow) -> int:
        """The highest READY version; `ModelVersionNotFound` when there is none."""
        found = self._conn.execute(
            select(func.max(model_versions.c.version)).where(
                model_versions.c.model_id == model.id, model_versions.c.status == ModelVersionStatus.READY.value
            )
        ).scalar_one_or_none()
        if found is None:
            raise ModelVersionNotFound(f"model {model.name!r} has no READY version, so @latest resolves to nothing")
        return int(found)

    def search_keys(
        self,
        project: str | None,
        model_id: int | None,
        search: SearchFilter,
        order_by: Sequence[OrderBy],
        limit: int,
        offset: int,
    ) -> list[VersionKey]:
        query = build_version_search(project, model_id, search, order_by, limit, offset)
        return [(int(r[0]), int(r[1])) for r in self._conn.execute(query)]

    # -- aliases -----------------------------------------------------------------------------------

    def alias(self, model: ModelRow, alias: str) -> int:
        """The version `alias` points at; `AliasNotFound` if the model has no such alias."""
        found = self._conn.execute(
            select(model_aliases.c.version).where(model_aliases.c.model_id == model.id, model_aliases.c.alias == alias)
        ).scalar_one_or_none()
        if found is None:
            raise AliasNotFound(f"model {model.name!r} has no alias {alias!r}")
        return int(found)

    def set_alias(self, model: ModelRow, alias: str, version: int, reason: str | None) -> int | None:
        """Point `alias` at `version` of the (locked) model in one UPSERT, and audit the move (every call is
        an event, a re-affirmation of the current version included). Returns the version it pointed at."""
        previous = self._conn.execute(
            select(model_aliases.c.version).where(model_aliases.c.model_id == model.id, model_aliases.c.alias == alias)
        ).scalar_one_or_none()
        upsert(
            self._conn,
            model_aliases,
            [{"model_id": model.id, "alias": alias, "version": version}],
            keys=("model_id", "alias"),
            update=("version",),
        )
        self._conn.execute(
            update(registered_models).where(registered_models.c.id == model.id).values(updated_at=now_ms())
        )
        self._audit.record(
            "model.set_alias",
            "model",
            model.name,
            before=None if previous is None else {"alias": alias, "version": previous},
            after={"alias": alias, "version": version, "reason": reason},
        )
        return None if previous is None else int(previous)

    def alias_history(self, model: ModelRow, limit: int) -> list[AliasChange]:
        """The newest `limit` alias moves of `model`, newest first, read from the audit log (since the model's
        latest `model.create`, so a deleted model's namesake does not inherit its history)."""
        created = (
            select(func.max(audit_log.c.seq))
            .where(audit_log.c.action == "model.create", audit_log.c.entity_id == model.name)
            .scalar_subquery()
        )
        query = (
            select(audit_log.c.seq, audit_log.c.time, audit_log.c.actor, audit_log.c.before, audit_log.c.after)
            .where(
                audit_log.c.action.in_(("model.set_alias", "model.delete_alias")),
                audit_log.c.entity_type == "model",
                audit_log.c.entity_id == model.name,
                audit_log.c.seq >= func.coalesce(created, 0),
            )
            .order_by(audit_log.c.seq.desc())
            .limit(limit)
        )
        changes = []
        for row in self._conn.execute(query):
            before = orjson.loads(row.before) if row.before is not None else {}
            after = orjson.loads(row.after) if row.after is not None else {}
            changes.append(
                AliasChange(
                    seq=int(row.seq),
                    time=int(row.time),
                    actor=str(row.actor),
                    alias=str(after.get("alias") or before.get("alias")),
                    version=after.get("version"),
                    previous=before.get("version"),
                    reason=after.get("reason"),
                )
            )
        return changes

    def delete_alias(self, model: ModelRow, alias: str, reason: str | None) -> int:
        """Remove `alias` from the (locked) model; returns the version it pointed at."""
        previous = self.alias(model, alias)
        self._conn.execute(
            delete(model_aliases).where(model_aliases.c.model_id == model.id, model_aliases.c.alias == alias)
        )
        self._conn.execute(
            update(registered_models).where(registered_models.c.id == model.id).values(updated_at=now_ms())
        )
        self._audit.record(
            "model.delete_alias",
            "model",
            model.name,
            before={"alias": alias, "version": previous},
            after={"alias": alias, "version": None, "reason": reason},
        )
        return previous
