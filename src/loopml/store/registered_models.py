"""Registered models with their tags; the row of a model is also the lock that serialises every change to
it, its versions and its aliases (`lock`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, func, select, update

from loopml.domain import Project, RegisteredModel
from loopml.domain.search import OrderBy, SearchFilter
from loopml.errors import AlreadyExists, ModelNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.model_search import build_model_search
from loopml.store.schema import model_aliases, model_versions, projects, registered_model_tags, registered_models
from loopml.store.upsert import insert_if_missing, upsert


class ModelRow(NamedTuple):
    """What a writer needs of a locked model: its id and project."""

    id: int
    name: str
    project: str


class RegisteredModelRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def create(
        self,
        project: Project,
        name: str,
        description: str,
        owner: str,
        tags: Mapping[str, str],
    ) -> RegisteredModel:
        """A new model; `AlreadyExists` if the name is taken (in any project: names are global)."""
        at = now_ms()
        row = {
            "project_id": project.id,
            "name": name,
            "description": description,
            "owner": owner,
            "created_at": at,
            "updated_at": at,
        }
        if not insert_if_missing(self._conn, registered_models, row, ("name",)):
            raise AlreadyExists(f"a registered model named {name!r} already exists (model names are unique)")
        model_id = self.lock(name).id
        if tags:
            self._conn.execute(
                registered_model_tags.insert(), [{"model_id": model_id, "key": k, "value": v} for k, v in tags.items()]
            )
        self._audit.record(
            "model.create",
            "model",
            name,
            after={"project": project.name, "description": description, "owner": owner, "tags": dict(tags)},
        )
        return self.get(name)

    def lock(self, name: str) -> ModelRow:
        """The model's id and project, with its row locked until the transaction ends (FOR UPDATE on
        PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers). `ModelNotFound` if missing."""
        row = self._conn.execute(
            select(registered_models.c.id, registered_models.c.name, projects.c.name.label("project"))
            .join(projects, projects.c.id == registered_models.c.project_id)
            .where(registered_models.c.name == name)
            .with_for_update(of=registered_models)
        ).one_or_none()
        if row is None:
            raise ModelNotFound(f"registered model {name!r} does not exist")
        return ModelRow(int(row.id), str(row.name), str(row.project))

    def find(self, name: str) -> ModelRow | None:
        row = self._conn.execute(
            select(registered_models.c.id, registered_models.c.name, projects.c.name.label("project"))
            .join(projects, projects.c.id == registered_models.c.project_id)
            .where(registered_models.c.name == name)
        ).one_or_none()
        return None if row is None else ModelRow(int(row.id), str(row.name), str(row.project))

    def project_of(self, name: str) -> str:
        """The project a model belongs to (for access checks); `ModelNotFound` if there is no such model."""
        found = self.find(name)
        if found is None:
            raise ModelNotFound(f"registered model {name!r} does not exist")
        return found.project

    def touch(self, model_id: int) -> None:
        self._conn.execute(
            update(registered_models).where(registered_models.c.id == model_id).values(updated_at=now_ms())
        )

    def get(self, name: str) -> RegisteredModel:
        found = self.find(name)
        if found is None:
            raise ModelNotFound(f"registered model {name!r} does not exist")
        return self.get_many([found.id])[0]

    def get_many(self, model_ids: Sequence[int]) -> list[RegisteredModel]:
        """Models in the order of `model_ids` (missing ids are left out)."""
        if not model_ids:
            return []
        ids = list(model_ids)
        model_tags: dict[int, dict[str, str]] = defaultdict(dict)
        aliases: dict[int, dict[str, int]] = defaultdict(dict)
        for row in self._conn.execute(select(registered_model_tags).where(registered_model_tags.c.model_id.in_(ids))):
            model_tags[row.model_id][row.key] = row.value
        for row in self._conn.execute(
            select(model_aliases).where(model_aliases.c.model_id.in_(ids)).order_by(model_aliases.c.alias)
        ):
            aliases[row.model_id][row.alias] = row.version
        latest = dict(
            self._conn.execute(
                select(model_versions.c.model_id, func.max(model_versions.c.version))
                .where(model_versions.c.model_id.in_(ids))
                .group_by(model_versions.c.model_id)
            ).all()
        )
        by_id: dict[int, RegisteredModel] = {}
        query = (
            select(registered_models, projects.c.name.label("project"))
            .join(projects, projects.c.id == registered_models.c.project_id)
            .where(registered_models.c.id.in_(ids))
        )
        for row in self._conn.execute(query):
            by_id[row.id] = RegisteredModel(
                name=row.name,
                project=row.project,
                description=row.description,
                owner=row.owner,
                created_at=row.created_at,
                updated_at=row.updated_at,
                tags=model_tags.get(row.id, {}),
                aliases=aliases.get(row.id, {}),
                latest_version=latest.get(row.id),
            )
        return [by_id[i] for i in ids if i in by_id]

    def update(self, name: str, description: str | None, tags: Mapping[str, str] | None) -> RegisteredModel:
        """Set the description and/or tags (tags are merged: keys not given keep their value)."""
        model = self.lock(name)
        current = self.get(name)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        if description is not None and description != current.description:
            self._conn.execute(
                update(registered_models).where(registered_models.c.id == model.id).values(description=description)
            )
            before["description"], after["description"] = current.description, description
        changed = {k: v for k, v in (tags or {}).items() if current.tags.get(k) != v}
        if changed:
            upsert(
                self._conn,
                registered_model_tags,
                [{"model_id": model.id, "key": k, "value": v} for k, v in changed.items()],
                keys=("model_id", "key"),
                update=("value",),
            )
            before["tags"] = {k: current.tags[k] for k in changed if k in current.tags}
            after["tags"] = changed
        if after:
            self.touch(model.id)
            self._audit.record("model.update", "model", name, before=before, after=after)
        return self.get(name)

    def delete_tag(self, model: ModelRow, key: str) -> None:
        """Remove tag `key` of the (locked) model (a key it does not have is a no-op, as in MLflow)."""
        before = self._conn.execute(
            select(registered_model_tags.c.value).where(
                registered_model_tags.c.model_id == model.id, registered_model_tags.c.key == key
            )
        ).scalar_one_or_none()
        if before is None:
            return
        self._conn.execute(
            delete(registered_model_tags).where(
                registered_model_tags.c.model_id == model.id, registered_model_tags.c.key == key
            )
        )
        self.touch(model.id)
        self._audit.record("model.delete_tag", "model", model.name, before={"tags": {key: before}}, after=None)

    def delete(self, model: ModelRow) -> None:
        """Remove the (locked) model with its tags; its versions must be gone already (`ModelVersionRepository.
        delete`). Audited with what the model was."""
        current = self.get(model.name)
        self._conn.execute(delete(registered_model_tags).where(registered_model_tags.c.model_id == model.id))
        self._conn.execute(delete(registered_models).where(registered_models.c.id == model.id))
        self._audit.record(
            "model.delete",
            "model",
            model.name,
            before={"project": current.project, "description": current.description, "tags": current.tags},
            after=None,
            project=model.project,
        )

    def search_ids(
        self, project: str | None, search: SearchFilter, order_by: Sequence[OrderBy], limit: int, offset: int
    ) -> list[int]:
        query = build_model_search(project, search, order_by, limit, offset)
        return [int(r[0]) for r in self._conn.execute(query)]
