"""Projects and the experiments they hold."""

from __future__ import annotations

from sqlalchemy import Connection, Row, Select, select

from loopml.domain import Experiment, Project
from loopml.errors import AlreadyExists, ExperimentNotFound, ProjectNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.schema import experiments, projects
from loopml.store.upsert import insert_if_missing


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
    projects.c.name.label("project"),
)


def _experiment(row: Row[tuple[int, str, int, str]]) -> Experiment:
    return Experiment(id=row.id, project=row.project, name=row.name, created_at=row.created_at)


class ExperimentRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def _select(self) -> Select[tuple[int, str, int, str]]:
        return select(*_EXPERIMENT_COLUMNS).join(projects, projects.c.id == experiments.c.project_id)

    def get(self, experiment_id: int) -> Experiment:
        row = self._conn.execute(self._select().where(experiments.c.id == experiment_id)).one_or_none()
        if row is None:
            raise ExperimentNotFound(f"experiment {experiment_id} does not exist")
        return _experiment(row)

    def find(self, project: str, name: str) -> Experiment | None:
        row = self._conn.execute(
            self._select().where(projects.c.name == project, experiments.c.name == name)
        ).one_or_none()
        return None if row is None else _experiment(row)

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

    def list(self, project: str | None = None) -> list[Experiment]:
        query = self._select().order_by(projects.c.name, experiments.c.name)
        if project is not None:
            query = query.where(projects.c.name == project)
        return [_experiment(r) for r in self._conn.execute(query)]
