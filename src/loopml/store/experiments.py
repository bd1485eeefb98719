"""Projects and the experiments they hold."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, Row, Select, delete, select, update

from loopml.domain import Experiment, Project
from loopml.errors import AlreadyExists, ExperimentNotFound, ProjectNotFound, TagNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.schema import experiment_tags, experiments, projects, runs
from loopml.store.upsert import insert_if_missing, upsert


class ProjectRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def get(self, name: str) -> Project:
        row = self._conn.execute(select(projects).where(projects.c.name == name)).one_or_none()
        if row is None:
            raise ProjectNotFound(f"project {name!r} does not exist")
        return Project(id=row.id, name=row.name, created_at=row.created_at)

    def get_or_create(self, name: str) -> Project:
        """The project, created if missing; safe when several writers create the same name at once."""
        if insert_if_missing(self._conn, projects, {"name": name, "created_at": now_ms()}, ("name",)):
            self._audit.record("project.create", "project", name, after={"name": name})
        return self.get(name)

    def list(self) -> list[Project]:
        rows = self._conn.execute(select(projects).order_by(projects.c.name))
        return [Project(id=r.id, name=r.name, created_at=r.created_at) for r in rows]


_EXPERIMENT_COLUMNS = (
    experiments.c.id,
    experiments.c.name,
    experiments.c.created_at,
    experiments.c.deleted_at,
    experiments.c.updated_at,
    projects.c.name.label("project"),
)
_Row = Row[tuple[int, str, int, int | None, int | None, str]]


def _experiment(row: _Row, tags: dict[str, str]) -> Experiment:
    return Experiment(
        id=row.id,
        project=row.project,
        name=row.name,
        created_at=row.created_at,
        deleted_at=row.deleted_at,
        updated_at=row.updated_at,
        tags=tags,
    )


class ExperimentRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def _select(self) -> Select[tuple[int, str, int, int | None, int | None, str]]:
        return select(*_EXPERIMENT_COLUMNS).join(projects, projects.c.id == experiments.c.project_id)

    def _with_tags(self, rows: list[_Row]) -> list[Experiment]:
        found: dict[int, dict[str, str]] = {row.id: {} for row in rows}
        if found:
            query = select(experiment_tags).where(experiment_tags.c.experiment_id.in_(list(found)))
            for experiment_id, key, value in self._conn.execute(query).all():
                found[experiment_id][key] = value
        return [_experiment(row, found[row.id]) for row in rows]

    def get(self, experiment_id: int) -> Experiment:
        row = self._conn.execute(self._select().where(experiments.c.id == experiment_id)).one_or_none()
        if row is None:
            raise ExperimentNotFound(f"experiment {experiment_id} does not exist")
        return self._with_tags([row])[0]

    def find(self, project: str, name: str) -> Experiment | None:
        row = self._conn.execute(
            self._select().where(projects.c.name == project, experiments.c.name == name)
        ).one_or_none()
        return None if row is None else self._with_tags([row])[0]

    def get_or_create(self, project: Project, name: str) -> Experiment:
        """The experiment, created if missing; safe when several writers create the same name at once."""
        return self._insert(project, name)[0]

    def create(self, project: Project, name: str) -> Experiment:
        """A new experiment; `AlreadyExists` if the project has one of that name (also when a concurrent
        writer committed it first)."""
        experiment, created = self._insert(project, name)
        if not created:
            raise AlreadyExists(f"experiment {name!r} already exists in project {project.name!r}")
        return experiment

    def _insert(self, project: Project, name: str) -> tuple[Experiment, bool]:
        row = {"project_id": project.id, "name": name, "created_at": now_ms()}
        created = insert_if_missing(self._conn, experiments, row, ("project_id", "name"))
        found = self.find(project.name, name)
        if found is None:  # pragma: no cover - inserted above, or by a writer that committed first
            raise ExperimentNotFound(f"experiment {name!r} vanished while it was being created")
        if created:
            self._audit.record(
                "experiment.create", "experiment", str(found.id), after={"project": project.name, "name": name}
            )
        return found, created

    def list(self, project: str | None = None, deleted: bool | None = False) -> list[Experiment]:
        """Experiments by project and name; `deleted`: False the live ones, True the deleted ones, None all."""
        query = self._select().order_by(projects.c.name, experiments.c.name)
        if project is not None:
            query = query.where(projects.c.name == project)
        if deleted is not None:
            query = query.where(
                experiments.c.deleted_at.is_not(None) if deleted else experiments.c.deleted_at.is_(None)
            )
        return self._with_tags(list(self._conn.execute(query)))

    def delete(self, experiment_id: int) -> None:
        """Mark the experiment and its live runs deleted, at one time (restore brings back those runs only)."""
        when = now_ms()
        marked = self._conn.execute(
            update(experiments)
            .where(experiments.c.id == experiment_id, experiments.c.deleted_at.is_(None))
            .values(deleted_at=when, updated_at=when)
        )
        if marked.rowcount == 0:
            return  # a concurrent delete won (PostgreSQL re-checks the condition once its lock is released)
        deleted = self._conn.execute(
            update(runs)
            .where(runs.c.experiment_id == experiment_id, runs.c.deleted_at.is_(None))
            .values(deleted_at=when)
            .returning(runs.c.id)
        ).all()
        self._audit.record(
            "experiment.delete", "experiment", str(experiment_id), after={"deleted_at": when, "runs": len(deleted)}
        )

    def restore(self, experiment_id: int, deleted_at: int) -> None:
        when = now_ms()
        marked = self._conn.execute(
            update(experiments)
            .where(experiments.c.id == experiment_id, experiments.c.deleted_at == deleted_at)
            .values(deleted_at=None, updated_at=when)
        )
        if marked.rowcount == 0:
            return  # restored (or deleted again) by a concurrent writer
        restored = self._conn.execute(
            update(runs)
            .where(runs.c.experiment_id == experiment_id, runs.c.deleted_at == deleted_at)
            .values(deleted_at=None)
            .returning(runs.c.id)
        ).all()
        self._audit.record(
            "experiment.restore",
            "experiment",
            str(experiment_id),
            before={"deleted_at": deleted_at},
            after={"runs": len(restored)},
        )

    def rename(self, experiment: Experiment, name: str) -> None:
        clash = self.find(experiment.project, name)
        if clash is not None and clash.id != experiment.id:
            raise AlreadyExists(f"experiment {name!r} already exists in project {experiment.project!r}")
        self._conn.execute(
            update(experiments).where(experiments.c.id == experiment.id).values(name=name, updated_at=now_ms())
        )
        self._audit.record(
            "experiment.rename",
            "experiment",
            str(experiment.id),
            before={"name": experiment.name},
            after={"name": name},
        )

    def set_tags(self, experiment: Experiment, values: Mapping[str, str]) -> None:
        changed = {k: v for k, v in values.items() if experiment.tags.get(k) != v}
        if not changed:
            return
        rows = [{"experiment_id": experiment.id, "key": k, "value": v} for k, v in changed.items()]
        upsert(self._conn, experiment_tags, rows, keys=("experiment_id", "key"), update=("value",))
        self._touch(experiment.id)
        before = {k: experiment.tags[k] for k in changed if k in experiment.tags}
        self._audit.record("experiment.set_tags", "experiment", str(experiment.id), before=before, after=changed)

    def delete_tag(self, experiment: Experiment, key: str) -> None:
        if key not in experiment.tags:
            raise TagNotFound(f"No tag with name: {key!r} in experiment with id {experiment.id}")
        self._conn.execute(
            delete(experiment_tags).where(
                experiment_tags.c.experiment_id == experiment.id, experiment_tags.c.key == key
            )
        )
        self._touch(experiment.id)
        self._audit.record(
            "experiment.delete_tag", "experiment", str(experiment.id), before={key: experiment.tags[key]}
        )

    def _touch(self, experiment_id: int) -> None:
        self._conn.execute(update(experiments).where(experiments.c.id == experiment_id).values(updated_at=now_ms()))
