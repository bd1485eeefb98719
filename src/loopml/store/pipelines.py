"""Pipeline runs, step runs and lineage edges (edges are derived bookkeeping of audited step runs: not audited).

A step run is written with its nested tracking run in one statement group: the `runs` row (status and times
as the step has them), its params, and the `step_runs` row, audited as one `run.create` and then one
`step_run.update` per change of state. A fully cached pipeline thus costs one audit row per step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from loopml.domain import LineageEdge, PipelineRunRecord, RunStatus, StepRun, StepState
from loopml.errors import PipelineNotFound, StepRunNotFound
from loopml.store.audit import AuditLog, now_ms
from loopml.store.schema import experiments, lineage_edges, params, pipeline_runs, projects, runs, step_runs

_RUN_STATUS = {
    StepState.PENDING: RunStatus.RUNNING,
    StepState.RUNNING: RunStatus.RUNNING,
    StepState.FINISHED: RunStatus.FINISHED,
    StepState.CACHED: RunStatus.FINISHED,
    StepState.FAILED: RunStatus.FAILED,
    StepState.TIMED_OUT: RunStatus.FAILED,
    StepState.KILLED: RunStatus.KILLED,
    StepState.SKIPPED: RunStatus.KILLED,
}


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _step_run(row: Any) -> StepRun:
    return StepRun(
        run_id=row.run_id,
        pipeline_run_id=row.pipeline_run_id,
        step=row.step,
        state=StepState(row.state),
        cache_key=row.cache_key,
        decision=row.decision,
        components=orjson.loads(row.components),
        inputs=orjson.loads(row.inputs),
        outputs=orjson.loads(row.outputs),
        attempts=row.attempts,
        error=row.error,
        traceback=row.traceback,
        log_digest=row.log_digest,
        cached_from=row.cached_from,
        started_at=row.started_at,
        ended_at=row.ended_at,
        upstream=tuple(orjson.loads(row.upstream)),
    )


def _values(step: StepRun) -> dict[str, Any]:
    return {
        "state": step.state.value,
        "cache_key": step.cache_key,
        "decision": step.decision,
        "components": _json(step.components),
        "inputs": _json(step.inputs),
        "outputs": _json(step.outputs),
        "upstream": _json(list(step.upstream)),
        "attempts": step.attempts,
        "error": step.error,
        "traceback": step.traceback,
        "log_digest": step.log_digest,
        "cached_from": step.cached_from,
        "started_at": step.started_at,
        "ended_at": step.ended_at,
    }


def _summary(step: StepRun) -> dict[str, Any]:
    return {"step": step.step, "state": step.state.value, "decision": step.decision, "attempts": step.attempts}


class PipelineRepository:
    def __init__(self, conn: Connection, audit: AuditLog) -> None:
        self._conn, self._audit = conn, audit

    # -- pipeline runs ---------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        pipeline: str,
        ref: str,
        executor: str,
        run_params: dict[str, Any],
        trigger: dict[str, Any],
        retry_of: str | None,
    ) -> None:
        self._conn.execute(
            insert(pipeline_runs).values(
                run_id=run_id,
                pipeline=pipeline,
                ref=ref,
                executor=executor,
                params=_json(run_params),
                trigger=_json(trigger),
                retry_of=retry_of,
                created_at=now_ms(),
            )
        )
        self._audit.record(
            "pipeline_run.create",
            "run",
            run_id,
            after={"pipeline": pipeline, "ref": ref, "executor": executor, "trigger": trigger, "retry_of": retry_of},
        )

    def _record(self, row: Any, steps: tuple[StepRun, ...] = ()) -> PipelineRunRecord:
        return PipelineRunRecord(
            run_id=row.run_id,
            pipeline=row.pipeline,
            ref=row.ref,
            executor=row.executor,
            params=orjson.loads(row.params),
            trigger=orjson.loads(row.trigger),
            status=row.status,
            start_time=row.start_time,
            end_time=row.end_time,
            retry_of=row.retry_of,
            steps=steps,
        )

    def _runs_query(self) -> Any:
        return (
            select(pipeline_runs, runs.c.status, runs.c.start_time, runs.c.end_time, projects.c.name.label("project"))
            .join(runs, runs.c.id == pipeline_runs.c.run_id)
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .join(projects, projects.c.id == experiments.c.project_id)
        )

    def scope(self, run_id: str) -> tuple[str, int]:
        """The project and experiment of a pipeline run (cheap: its steps are not read)."""
        row = self._conn.execute(
            select(projects.c.name, runs.c.experiment_id)
            .select_from(pipeline_runs)
            .join(runs, runs.c.id == pipeline_runs.c.run_id)
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .join(projects, projects.c.id == experiments.c.project_id)
            .where(pipeline_runs.c.run_id == run_id)
        ).one_or_none()
        if row is None:
            raise PipelineNotFound(f"pipeline run {run_id!r} does not exist")
        return str(row.name), int(row.experiment_id)

    def get_run(self, run_id: str) -> tuple[PipelineRunRecord, str]:
        """The pipeline run with its step runs, and its project."""
        row = self._conn.execute(self._runs_query().where(pipeline_runs.c.run_id == run_id)).one_or_none()
        if row is None:
            raise PipelineNotFound(f"pipeline run {run_id!r} does not exist")
        return self._record(row, tuple(self.step_runs(run_id))), str(row.project)

    def list_runs(
        self, pipeline: str | None, project: str | None, limit: int, status: str | None = None
    ) -> list[PipelineRunRecord]:
        query = self._runs_query()
        if pipeline is not None:
            query = query.where(pipeline_runs.c.pipeline == pipeline)
        if project is not None:
            query = query.where(projects.c.name == project)
        if status is not None:
            query = query.where(runs.c.status == status)
        query = query.order_by(pipeline_runs.c.created_at.desc(), pipeline_runs.c.run_id).limit(limit)
        return [self._record(row) for row in self._conn.execute(query)]

    def retried_by(self, run_id: str) -> str | None:
        """The run that retried `run_id`, if any (a run is retried at most once)."""
        found = self._conn.execute(
            select(pipeline_runs.c.run_id).where(pipeline_runs.c.retry_of == run_id)
        ).scalar_one_or_none()
        return None if found is None else str(found)

    # -- runs submitted to a server: holder and heartbeat (0017_pipeops) -------------------------

    def hold(self, run_id: str, holder: str, at: int) -> None:
        """Record the process running `run_id` (`host:pid:...`) and its first heartbeat."""
        self._conn.execute(
            update(pipeline_runs).where(pipeline_runs.c.run_id == run_id).values(holder=holder, heartbeat_at=at)
        )

    def heartbeat(self, run_id: str, at: int) -> None:
        self._conn.execute(update(pipeline_runs).where(pipeline_runs.c.run_id == run_id).values(heartbeat_at=at))

    def held_running(self) -> list[tuple[str, str, int]]:
        """(run id, holder, last heartbeat) of every RUNNING run that a process holds."""
        rows = self._conn.execute(
            select(pipeline_runs.c.run_id, pipeline_runs.c.holder, pipeline_runs.c.heartbeat_at)
            .join(runs, runs.c.id == pipeline_runs.c.run_id)
            .where(pipeline_runs.c.heartbeat_at.is_not(None), runs.c.status == RunStatus.RUNNING.value)
        )
        return [(str(r.run_id), str(r.holder), int(r.heartbeat_at)) for r in rows]

    def fail_orphan(self, run_id: str, project: str, reason: str, at: int) -> bool:
        """Mark a RUNNING run FAILED and its unfinished steps KILLED with `reason`; False if it had ended."""
        done = self._conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value)
            .values(status=RunStatus.FAILED.value, end_time=at)
        )
        if done.rowcount != 1:
            return False
        open_steps = [s for s in self.step_runs(run_id) if s.state in (StepState.PENDING, StepState.RUNNING)]
        from dataclasses import replace

        self.update_step_runs(
            [replace(s, state=StepState.KILLED, error=reason, ended_at=at) for s in open_steps], project
        )
        self._audit.record("pipeline_run.fail_orphaned", "run", run_id, after={"reason": reason}, project=project)
        return True

    # -- step runs -------------------------------------------------------------------------------

    def create_step_runs(
        self, experiment_id: int, project: str, steps: Sequence[tuple[StepRun, dict[str, str]]]
    ) -> None:
        """Insert step runs with their nested tracking runs (and those runs' params) in bulk."""
        if not steps:
            return
        run_rows: list[dict[str, Any]] = []
        param_rows: list[dict[str, Any]] = []
        step_rows: list[dict[str, Any]] = []
        for step, step_params in steps:
            status = _RUN_STATUS[step.state]
            run_rows.append(
                {
                    "id": step.run_id,
                    "experiment_id": experiment_id,
                    "name": step.step,
                    "status": status.value,
                    "start_time": step.started_at or now_ms(),
                    "end_time": step.ended_at if status.is_terminal else None,
                    "parent_run_id": step.pipeline_run_id,
                }
            )
            param_rows.extend({"run_id": step.run_id, "key": k, "value": v} for k, v in step_params.items())
            step_rows.append({"run_id": step.run_id, "pipeline_run_id": step.pipeline_run_id, "step": step.step})
            step_rows[-1].update(_values(step))
        self._conn.execute(insert(runs), run_rows)
        if param_rows:
            self._conn.execute(insert(params), param_rows)
        self._conn.execute(insert(step_runs), step_rows)
        self._audit.record_many(
            [
                (
                    "run.create",
                    "run",
                    step.run_id,
                    None,
                    {
                        "experiment_id": experiment_id,
                        "name": step.step,
                        "parent_run_id": step.pipeline_run_id,
                        "params": step_params,
                        **_summary(step),
                    },
                    project,
                )
                for step, step_params in steps
            ]
        )

    def update_step_runs(self, steps: Sequence[StepRun], project: str) -> None:
        """Write the new state of step runs written before (and their nested runs' status)."""
        if not steps:
            return
        ids = [s.run_id for s in steps]
        before = {
            row.run_id: row
            for row in self._conn.execute(
                select(step_runs.c.run_id, step_runs.c.state, step_runs.c.attempts).where(step_runs.c.run_id.in_(ids))
            )
        }
        missing = [i for i in ids if i not in before]
        if missing:
            raise StepRunNotFound(f"step run {missing[0]!r} does not exist")
        self._conn.execute(
            update(step_runs).where(step_runs.c.run_id == bindparam("_id")),
            [{"_id": s.run_id, **_values(s)} for s in steps],
        )
        statuses = []
        for s in steps:
            status = _RUN_STATUS[s.state]
            end = (s.ended_at or now_ms()) if status.is_terminal else None
            statuses.append({"_id": s.run_id, "status": status.value, "end_time": end})
        self._conn.execute(update(runs).where(runs.c.id == bindparam("_id")), statuses)
        self._audit.record_many(
            [
                (
                    "step_run.update",
                    "run",
                    s.run_id,
                    {"state": before[s.run_id].state, "attempts": before[s.run_id].attempts},
                    _summary(s),
                    project,
                )
                for s in steps
            ]
        )

    def step_runs(self, pipeline_run_id: str) -> list[StepRun]:
        query = (
            select(step_runs)
            .where(step_runs.c.pipeline_run_id == pipeline_run_id)
            .order_by(step_runs.c.started_at, step_runs.c.step)
        )
        return [_step_run(row) for row in self._conn.execute(query)]

    def get_step_run(self, run_id: str) -> StepRun:
        row = self._conn.execute(select(step_runs).where(step_runs.c.run_id == run_id)).one_or_none()
        if row is None:
            raise StepRunNotFound(f"step run {run_id!r} does not exist")
        return _step_run(row)

    def cached(self, cache_key: str, project: str) -> list[StepRun]:
        """Finished step runs of `project` with this cache key, newest first (a cache hit reuses one)."""
        done = [StepState.FINISHED.value, StepState.CACHED.value]
        probe = select(step_runs.c.run_id).where(step_runs.c.cache_key == cache_key, step_runs.c.state.in_(done))
        if self._conn.execute(probe.limit(1)).first() is None:
            return []  # the common miss answered by the index alone
        query = (
            select(step_runs)
            .join(runs, runs.c.id == step_runs.c.run_id)
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .join(projects, projects.c.id == experiments.c.project_id)
            .where(
                and_(
                    step_runs.c.cache_key == cache_key,
                    step_runs.c.state.in_([StepState.FINISHED.value, StepState.CACHED.value]),
                    projects.c.name == project,
                )
            )
            .order_by(step_runs.c.ended_at.desc())
            .limit(5)
        )
        return [_step_run(row) for row in self._conn.execute(query)]

    def latest_by_step(self, pipeline: str, project: str) -> dict[str, StepRun]:
        """The latest finished step run of each step of pipeline `pipeline`, by step name."""
        query = (
            select(step_runs)
            .join(pipeline_runs, pipeline_runs.c.run_id == step_runs.c.pipeline_run_id)
            .join(runs, runs.c.id == step_runs.c.pipeline_run_id)
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .join(projects, projects.c.id == experiments.c.project_id)
            .where(
                pipeline_runs.c.pipeline == pipeline,
                step_runs.c.state.in_([StepState.FINISHED.value, StepState.CACHED.value]),
                projects.c.name == project,
            )
            .order_by(step_runs.c.ended_at)
        )
        found: dict[str, StepRun] = {}
        for row in self._conn.execute(query):
            found[row.step] = _step_run(row)  # ascending: the latest of each step stays
        return found

    def previous(self, pipeline: str, step: str, project: str) -> StepRun | None:
        """The latest finished step run of `step` in pipeline `pipeline`: what a miss is explained against."""
        query = (
            select(step_runs)
            .join(pipeline_runs, pipeline_runs.c.run_id == step_runs.c.pipeline_run_id)
            .join(runs, runs.c.id == step_runs.c.run_id)
            .join(experiments, experiments.c.id == runs.c.experiment_id)
            .join(projects, projects.c.id == experiments.c.project_id)
            .where(
                pipeline_runs.c.pipeline == pipeline,
                step_runs.c.step == step,
                step_runs.c.state.in_([StepState.FINISHED.value, StepState.CACHED.value]),
                projects.c.name == project,
            )
            .order_by(step_runs.c.ended_at.desc())
            .limit(1)
        )
        row = self._conn.execute(query).one_or_none()
        return None if row is None else _step_run(row)

    # -- lineage ---------------------------------------------------------------------------------

    def add_edges(self, edges: Sequence[LineageEdge]) -> None:
        """Record edges; one already recorded is left as it is."""
        rows = {
            (e.source_kind, e.source_id, e.target_kind, e.target_id): {
                "source_kind": e.source_kind,
                "source_id": e.source_id,
                "target_kind": e.target_kind,
                "target_id": e.target_id,
                "pipeline_run_id": e.pipeline_run_id,
                "created_at": e.created_at or now_ms(),
            }
            for e in edges
        }
        if not rows:
            return
        dialect = sqlite if self._conn.dialect.name == "sqlite" else postgresql
        statement = dialect.insert(lineage_edges).on_conflict_do_nothing(
            index_elements=["source_kind", "source_id", "target_kind", "target_id"]
        )
        self._conn.execute(statement, list(rows.values()))

    def edges_into(self, kind: str, ids: Sequence[str]) -> list[LineageEdge]:
        if not ids:
            return []
        query = select(lineage_edges).where(
            lineage_edges.c.target_kind == kind, lineage_edges.c.target_id.in_(list(ids))
        )
        return [
            LineageEdge(r.source_kind, r.source_id, r.target_kind, r.target_id, r.pipeline_run_id, r.created_at)
            for r in self._conn.execute(query)
        ]
