"""Runs with their params, tags and latest metric values."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from loopml.domain import Metric, Run, RunStatus
from loopml.domain.search import OrderBy, SearchFilter
from loopml.errors import ParamConflict, RunNotFound, TagNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.run_search import search_run_ids
from loopml.store.schema import experiments, latest_metrics, params, projects, runs, tags
from loopml.store.upsert import upsert


@dataclass(frozen=True, slots=True)
class NewRun:
    """A whole run written at once (`RunRepository.create_many`): an import of a finished history."""

    id: str
    experiment_id: int
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    params: Mapping[str, str]
    tags: Mapping[str, str]


class RunRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    def create(
        self,
        run_id: str,
        experiment_id: int,
        name: str,
        start_time: int,
        parent_run_id: str | None,
    ) -> None:
        self._conn.execute(
            insert(runs).values(
                id=run_id,
                experiment_id=experiment_id,
                name=name,
                status=RunStatus.RUNNING.value,
                start_time=start_time,
                end_time=None,
                parent_run_id=parent_run_id,
            )
        )
        self._audit.record(
            "run.create",
            "run",
            run_id,
            after={"experiment_id": experiment_id, "name": name, "parent_run_id": parent_run_id},
        )

    def create_many(self, new: Sequence[NewRun], project: str, source: str) -> None:
        """Insert whole runs (all in `project`, none existing yet) with one INSERT per table; each is audited
        as `run.create` with its status, params and tags, and `source` says where it came from."""
        if not new:
            return
        self._conn.execute(
            insert(runs),
            [
                {
                    "id": r.id,
                    "experiment_id": r.experiment_id,
                    "name": r.name,
                    "status": r.status.value,
                    "start_time": r.start_time,
                    "end_time": r.end_time,
                    "parent_run_id": r.parent_run_id,
                }
                for r in new
            ],
        )
        param_rows = [{"run_id": r.id, "key": k, "value": v} for r in new for k, v in r.params.items()]
        tag_rows = [{"run_id": r.id, "key": k, "value": v} for r in new for k, v in r.tags.items()]
        if param_rows:
            self._conn.execute(insert(params), param_rows)
        if tag_rows:
            self._conn.execute(insert(tags), tag_rows)
        entries: list[tuple[str, str, str, dict[str, Any] | None, dict[str, Any] | None, str | None]] = [
            (
                "run.create",
                "run",
                r.id,
                None,
                {
                    "experiment_id": r.experiment_id,
                    "name": r.name,
                    "parent_run_id": r.parent_run_id,
                    "status": r.status.value,
                    "start_time": r.start_time,
                    "end_time": r.end_time,
                    "params": dict(r.params),
                    "tags": dict(r.tags),
                    "source": source,
                },
                project,
            )
            for r in new
        ]
        self._audit.record_many(entries)

    def project_of(self, run_id: str) -> str:
        """The project a run belongs to (for access checks); RunNotFound if there is no such run."""
        project = self._conn.execute(
            select(projects.c.name)
            .select_from(runs)
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .join(projects, projects.c.id == experiments.c.project_id)
            .where(runs.c.id == run_id)
        ).scalar_one_or_none()
        if project is None:
            raise RunNotFound(f"run {run_id!r} does not exist")
        return str(project)

    def existing(self, run_ids: Sequence[str]) -> set[str]:
        """Which of `run_ids` exist."""
        found: set[str] = set()
        for i in range(0, len(run_ids), 500):
            chunk = list(run_ids[i : i + 500])
            found.update(str(r) for r in self._conn.execute(select(runs.c.id).where(runs.c.id.in_(chunk))).scalars())
        return found

    def get(self, run_id: str) -> Run:
        found = self.get_many([run_id])
        if not found:
            raise RunNotFound(f"run {run_id!r} does not exist")
        return found[0]

    def get_many(self, run_ids: Sequence[str]) -> list[Run]:
        """Runs in the order of `run_ids` (missing ids are left out)."""
        if not run_ids:
            return []
        ids = list(run_ids)
        run_params: dict[str, dict[str, str]] = defaultdict(dict)
        run_tags: dict[str, dict[str, str]] = defaultdict(dict)
        run_metrics: dict[str, dict[str, float]] = defaultdict(dict)
        run_points: dict[str, dict[str, Metric]] = defaultdict(dict)
        # .all() and plain tuples: iterating Row objects one at a time cost more than the SQL here.
        for run_id, key, value in self._conn.execute(
            select(params.c.run_id, params.c.key, params.c.value).where(params.c.run_id.in_(ids))
        ).all():
            run_params[run_id][key] = value
        for run_id, key, value in self._conn.execute(
            select(tags.c.run_id, tags.c.key, tags.c.value).where(tags.c.run_id.in_(ids))
        ).all():
            run_tags[run_id][key] = value
        for run_id, key, value, is_nan, step, timestamp in self._conn.execute(
            select(
                latest_metrics.c.run_id,
                latest_metrics.c.key,
                latest_metrics.c.value,
                latest_metrics.c.is_nan,
                latest_metrics.c.step,
                latest_metrics.c.timestamp,
            ).where(latest_metrics.c.run_id.in_(ids))
        ).all():
            number = math.nan if is_nan else float(value)
            run_metrics[run_id][key] = number
            run_points[run_id][key] = Metric(key, number, step, timestamp)
        by_id = {}
        for row in self._conn.execute(select(runs).where(runs.c.id.in_(ids))):
            by_id[row.id] = Run(
                id=row.id,
                experiment_id=row.experiment_id,
                name=row.name,
                status=RunStatus(row.status),
                start_time=row.start_time,
                end_time=row.end_time,
                parent_run_id=row.parent_run_id,
                params=run_params.get(row.id, {}),
                metrics=run_metrics.get(row.id, {}),
                tags=run_tags.get(row.id, {}),
                deleted_at=row.deleted_at,
                metric_points=run_points.get(row.id, {}),
            )
        return [by_id[i] for i in ids if i in by_id]

    def state_of(self, run_id: str) -> tuple[str, int | None]:
        """The run's project and deletion time, in one query (access and liveness checks of a write)."""
        row = self._conn.execute(
            select(projects.c.name, runs.c.deleted_at)
            .select_from(runs)
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .join(projects, projects.c.id == experiments.c.project_id)
            .where(runs.c.id == run_id)
        ).one_or_none()
        if row is None:
            raise RunNotFound(f"run {run_id!r} does not exist")
        return str(row[0]), row[1]

    def delete(self, run_id: str) -> None:
        when = now_ms()
        marked = self._conn.execute(
            update(runs).where(runs.c.id == run_id, runs.c.deleted_at.is_(None)).values(deleted_at=when)
        )
        if marked.rowcount == 0:
            return  # a concurrent delete won (PostgreSQL re-checks the condition once its lock is released)
        self._audit.record("run.delete", "run", run_id, after={"deleted_at": when})

    def restore(self, run_id: str) -> None:
        before = self._conn.execute(select(runs.c.deleted_at).where(runs.c.id == run_id)).scalar_one()
        marked = self._conn.execute(
            update(runs).where(runs.c.id == run_id, runs.c.deleted_at.is_not(None)).values(deleted_at=None)
        )
        if marked.rowcount == 0:
            return  # restored by a concurrent writer
        self._audit.record("run.restore", "run", run_id, before={"deleted_at": before})

    def rename(self, run_id: str, name: str) -> None:
        before = self._conn.execute(select(runs.c.name).where(runs.c.id == run_id)).scalar_one()
        if before == name:
            return
        self._conn.execute(update(runs).where(runs.c.id == run_id).values(name=name))
        self._audit.record("run.rename", "run", run_id, before={"name": before}, after={"name": name})

    def delete_tag(self, run_id: str, key: str) -> None:
        value = self._conn.execute(
            select(tags.c.value).where(tags.c.run_id == run_id, tags.c.key == key)
        ).scalar_one_or_none()
        if value is None:
            raise TagNotFound(f"No tag with name: {key!r} in run with id {run_id}")
        self._conn.execute(delete(tags).where(tags.c.run_id == run_id, tags.c.key == key))
        self._audit.record("run.delete_tag", "run", run_id, before={key: value})

    def set_status(self, run_id: str, status: RunStatus, end_time: int | None) -> None:
        before = self._conn.execute(select(runs.c.status, runs.c.end_time).where(runs.c.id == run_id)).one()
        self._conn.execute(update(runs).where(runs.c.id == run_id).values(status=status.value, end_time=end_time))
        self._audit.record(
            "run.update",
            "run",
            run_id,
            before={"status": before.status, "end_time": before.end_time},
            after={"status": status.value, "end_time": end_time},
        )

    def log_params(self, run_id: str, values: Mapping[str, str]) -> None:
        """Params are write-once: the same value again is a no-op, a different value is ParamConflict."""
        if not values:
            return
        existing = {
            row.key: row.value
            for row in self._conn.execute(
                select(params.c.key, params.c.value).where(params.c.run_id == run_id, params.c.key.in_(list(values)))
            )
        }
        for key, value in values.items():
            if key in existing and existing[key] != value:
                raise ParamConflict(
                    f"param {key!r} of run {run_id} is already {existing[key]!r}; params are write-once, "
                    f"so it cannot become {value!r} (log the new value under another key, or start a new run)"
                )
        new = {k: v for k, v in values.items() if k not in existing}
        if new:
            self._conn.execute(insert(params), [{"run_id": run_id, "key": k, "value": v} for k, v in new.items()])
            self._audit.record("run.log_params", "run", run_id, after=new)

    def set_tags(self, run_id: str, values: Mapping[str, str]) -> None:
        if not values:
            return
        before = {
            row.key: row.value
            for row in self._conn.execute(
                select(tags.c.key, tags.c.value).where(tags.c.run_id == run_id, tags.c.key.in_(list(values)))
            )
        }
        changed = {k: v for k, v in values.items() if before.get(k) != v}
        if not changed:
            return
        upsert(
            self._conn,
            tags,
            [{"run_id": run_id, "key": k, "value": v} for k, v in changed.items()],
            keys=("run_id", "key"),
            update=("value",),
        )
        self._audit.record(
            "run.set_tags",
            "run",
            run_id,
            before={k: before[k] for k in changed if k in before},
            after=changed,
        )

    def search_ids(
        self,
        experiment_ids: Sequence[int],
        search: SearchFilter,
        order_by: Sequence[OrderBy],
        limit: int,
        offset: int,
        deleted: bool | None = False,
    ) -> list[str]:
        """Ids of matching runs; `deleted`: False the live runs, True the deleted ones, None all."""
        return search_run_ids(self._conn, experiment_ids, search, order_by, limit, offset, deleted=deleted)
