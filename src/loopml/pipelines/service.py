"""The pipeline service: the bookkeeping of pipeline runs in the metadata store, checked and authorised.

The runner calls it to open a run, look up the cache, record step runs in batches, and close the run; the
interfaces call it to list and show runs, read a step's log and answer lineage questions.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.exc import IntegrityError as SqlIntegrityError

from loopml.artifacts import ArtifactStore
from loopml.domain import (
    DatasetInput,
    LineageEdge,
    MetricColumns,
    PipelineRunRecord,
    Principal,
    Role,
    RunStatus,
    StepRun,
    StepState,
)
from loopml.domain.pipelines import Lineage
from loopml.domain.validation import check_name, check_values
from loopml.errors import AlreadyExists, InvalidInput, NotFound, PermissionDenied, PipelineNotFound, StepRunNotFound
from loopml.store import MetadataStore
from loopml.store.audit import now_ms

__all__ = ["Lineage", "PipelineService", "StepRecord"]

_HEX = set("0123456789abcdef")
MAX_LIST = 1000


@dataclass(frozen=True)
class StepRecord:
    """A step run to write: new (with the params of its nested run) or an update of one written before."""

    step: StepRun
    params: Mapping[str, str] | None = None
    """Set for a new step run; None for an update."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    datasets: Sequence[DatasetInput] = ()
    edges: Sequence[LineageEdge] = ()
    log: str | None = None


def _check_run_id(run_id: object, what: str = "pipeline run") -> str:
    if not isinstance(run_id, str) or len(run_id) != 32 or not set(run_id) <= _HEX:
        raise PipelineNotFound(f"{what} {run_id!r} does not exist ({what} ids are 32 hex characters)")
    return run_id


class PipelineService:
    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, default_project: str = "default") -> None:
        self.store = store
        self.artifacts = artifacts
        self.default_project = default_project

    def _project_for(self, principal: Principal, project: str | None) -> str:
        if project is None:
            return principal.project or self.default_project
        check_name("project", project)
        if not principal.can_see(project):
            raise PermissionDenied(
                f"the token in use is scoped to project {principal.project!r} and cannot reach {project!r}"
            )
        return project

    # -- writing (the runner) --------------------------------------------------------------------

    def start_run(
        self,
        principal: Principal,
        pipeline: str,
        ref: str,
        executor: str,
        params: Mapping[str, Any],
        *,
        trigger: Mapping[str, Any] | None = None,
        retry_of: str | None = None,
        project: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> PipelineRunRecord:
        """Open a pipeline run: a tracking run in experiment `pipeline` (created if needed) with the params
        as run params, plus what to run it again from. `trigger` says who started it ({"kind": "manual"})."""
        principal.require(Role.EDITOR)
        check_name("pipeline", pipeline)
        project = self._project_for(principal, project)
        trigger = dict(trigger or {"kind": "manual"})
        if not isinstance(trigger.get("kind"), str):
            raise InvalidInput(f"a trigger needs a 'kind' string, got {trigger!r}")
        run_params = check_values("param", {k: _param_text(v) for k, v in params.items()})
        run_tags = check_values("tag", {**(tags or {}), "loopml.pipeline": pipeline, "loopml.pipeline.ref": ref})
        run_id = uuid.uuid4().hex
        with self.store.write(principal.actor) as unit:
            if retry_of is not None:
                earlier_project = unit.pipelines.scope(_check_run_id(retry_of))[0]
                if not principal.can_see(earlier_project):
                    raise PipelineNotFound(f"pipeline run {retry_of!r} does not exist")
                _check_retriable(unit, retry_of)
            experiment = unit.experiments.get_or_create(unit.projects.get_or_create(project), pipeline)
            unit.runs.create(run_id, experiment.id, f"{pipeline}-{run_id[:8]}", now_ms(), None)
            unit.runs.log_params(run_id, run_params)
            unit.runs.set_tags(run_id, run_tags)
            try:
                unit.pipelines.create_run(run_id, pipeline, ref, executor, dict(params), trigger, retry_of)
            except SqlIntegrityError:  # a concurrent retry of the same run got there first
                raise AlreadyExists(
                    f"pipeline run {retry_of} is being retried by another request; `loopml pipeline runs` shows it"
                ) from None
            record, _ = unit.pipelines.get_run(run_id)
        return record

    def hold(self, principal: Principal, run_id: str, holder: str) -> None:
        """Say that process `holder` (`host:pid:start`) runs `run_id`: from now on it heartbeats, and the sweep
        fails the run if the heartbeats stop or the process is gone."""
        principal.require(Role.EDITOR)
        with self.store.write(principal.actor) as unit:
            self._writable_run(unit, principal, run_id)
            unit.pipelines.hold(run_id, holder, now_ms())

    def heartbeat(self, principal: Principal, run_id: str) -> None:
        principal.require(Role.EDITOR)
        with self.store.write(principal.actor) as unit:
            self._writable_run(unit, principal, run_id)
            unit.pipelines.heartbeat(run_id, now_ms())

    def sweep(self, principal: Principal, stale_seconds: float, at: int | None = None) -> list[str]:
        """Fail the RUNNING runs whose process died: no heartbeat for `stale_seconds`, or a holder process on
        this host that no longer exists. Their unfinished steps are marked KILLED. The runs it failed."""
        principal.require(Role.ADMIN)
        at = now_ms() if at is None else at
        cutoff = at - int(stale_seconds * 1000)
        with self.store.read() as unit:
            held = unit.pipelines.held_running()
        failed = []
        for run_id, holder, beat in held:
            if beat < cutoff:
                why = (
                    f"the process running it ({holder}) sent no heartbeat for {stale_seconds:g} s; the run was "
                    "marked FAILED (`loopml pipeline retry RUN_ID` reruns it, reusing finished outputs)"
                )
            elif not holder_alive(holder):
                why = (
                    f"the process running it ({holder}) exited before the run ended; the run was marked FAILED "
                    "(`loopml pipeline retry RUN_ID` reruns it, reusing finished outputs)"
                )
            else:
                continue
            with self.store.write(principal.actor) as unit:
                project, _ = unit.pipelines.scope(run_id)
                if unit.pipelines.fail_orphan(run_id, project, why, at):
                    failed.append(run_id)
        return failed

    def _writable_run(self, unit: Any, principal: Principal, run_id: str) -> tuple[str, int]:
        project, experiment_id = unit.pipelines.scope(_check_run_id(run_id))
        if not principal.can_see(project):
            raise PipelineNotFound(f"pipeline run {run_id!r} does not exist")
        return project, experiment_id

    def record_steps(self, principal: Principal, pipeline_run_id: str, records: Sequence[StepRecord]) -> None:
        """Write step runs (new ones and updates) with their metrics, datasets, edges and logs, in one
        transaction: a crash leaves all of them or none."""
        principal.require(Role.EDITOR)
        logs = {r.step.run_id: self.artifacts.put_bytes(r.log.encode()) for r in records if r.log}
        with self.store.write(principal.actor) as unit:
            self._write_steps(unit, principal, pipeline_run_id, records, logs)

    def _write_steps(
        self,
        unit: Any,
        principal: Principal,
        pipeline_run_id: str,
        records: Sequence[StepRecord],
        logs: Mapping[str, Any],
    ) -> None:
        if not records:
            return
        project, experiment_id = self._writable_run(unit, principal, pipeline_run_id)
        new = []
        for r in records:
            if r.step.pipeline_run_id != pipeline_run_id:
                raise InvalidInput(f"step run {r.step.run_id} belongs to another pipeline run")
            step = replace(r.step, log_digest=logs[r.step.run_id].digest) if r.step.run_id in logs else r.step
            if r.params is not None:
                new.append((step, dict(r.params)))
        unit.pipelines.create_step_runs(experiment_id, project, new)
        unit.pipelines.update_step_runs(
            [
                replace(r.step, log_digest=logs[r.step.run_id].digest) if r.step.run_id in logs else r.step
                for r in records
                if r.params is None
            ],
            project,
        )
        edges: list[LineageEdge] = []
        for r in records:
            edges.extend(r.edges)
            if r.step.run_id in logs:
                blob = logs[r.step.run_id]
                unit.artifacts.put(r.step.run_id, "logs/output.txt", blob.digest, blob.size)
            if r.step.state is StepState.FINISHED:
                for output in r.step.outputs:
                    if output["serializer"] == "loopml-model":
                        _record_package(unit, r.step.run_id, output)
            if r.metrics:
                at = now_ms()
                keys = list(r.metrics)
                batch = MetricColumns(keys, [r.metrics[k] for k in keys], [0] * len(keys), [at] * len(keys))
                unit.metrics.log(r.step.run_id, batch)
            for data in r.datasets:
                unit.datasets.link(r.step.run_id, data)
        unit.pipelines.add_edges(edges)

    def finish_run(
        self,
        principal: Principal,
        run_id: str,
        status: RunStatus,
        metrics: Mapping[str, float] | None = None,
        records: Sequence[StepRecord] = (),
    ) -> PipelineRunRecord:
        """Close the run with `status`, writing the last step `records` in the same transaction."""
        principal.require(Role.EDITOR)
        logs = {r.step.run_id: self.artifacts.put_bytes(r.log.encode()) for r in records if r.log}
        with self.store.write(principal.actor) as unit:
            self._writable_run(unit, principal, run_id)
            self._write_steps(unit, principal, run_id, records, logs)
            if metrics:
                keys = list(metrics)
                at = now_ms()
                unit.metrics.log(
                    run_id, MetricColumns(keys, [metrics[k] for k in keys], [0] * len(keys), [at] * len(keys))
                )
            unit.runs.set_status(run_id, status, None if status is RunStatus.RUNNING else now_ms())
            record, _ = unit.pipelines.get_run(run_id)
        return record

    def cache_hits(self, principal: Principal, project: str, cache_key: str) -> list[StepRun]:
        """Finished step runs with this key whose every output blob is still in the artifact store."""
        with self.store.read() as unit:
            candidates = unit.pipelines.cached(cache_key, self._project_for(principal, project))
        return [c for c in candidates if all(self._output_exists(o) for o in c.outputs)]

    def _output_exists(self, output: Mapping[str, Any]) -> bool:
        files = output.get("meta", {}).get("files")
        digests = [f[0] for f in files.values()] if isinstance(files, dict) else [output["digest"]]
        return all(self.artifacts.exists(d) for d in digests)

    def previous_step(self, principal: Principal, project: str, pipeline: str, step: str) -> StepRun | None:
        with self.store.read() as unit:
            return unit.pipelines.previous(pipeline, step, self._project_for(principal, project))

    def latest_steps(self, principal: Principal, project: str, pipeline: str) -> dict[str, StepRun]:
        """The latest finished run of each step of `pipeline`: the runner's first guess at cache hits, and
        what a miss is explained against."""
        with self.store.read() as unit:
            return unit.pipelines.latest_by_step(pipeline, self._project_for(principal, project))

    def outputs_exist(self, step: StepRun) -> bool:
        return all(self._output_exists(o) for o in step.outputs)

    def register_model(
        self, principal: Principal, step_run: StepRun, output: Mapping[str, Any], model_name: str
    ) -> str:
        """Register a model a step produced as the next version of `model_name`; returns `name/version`."""
        from loopml.registry import RegistryService

        meta = output["meta"]
        prefix = package_prefix(output)
        registry = RegistryService(self.store, self.default_project)
        with self.store.read() as unit:
            project = unit.runs.project_of(step_run.run_id)
        registry.get_or_create_model(principal, model_name, project)
        version = registry.create_version(
            principal, model_name, step_run.run_id, prefix, output["digest"], str(meta["flavor"])
        )
        target = f"{version.name}/{version.version}"
        with self.store.write(principal.actor) as unit:
            unit.pipelines.add_edges(
                [LineageEdge("model", output["digest"], "model_version", target, step_run.pipeline_run_id)]
            )
        return target

    # -- reading ---------------------------------------------------------------------------------

    def get_run(self, principal: Principal, run_id: str) -> PipelineRunRecord:
        with self.store.read() as unit:
            record, project = unit.pipelines.get_run(_check_run_id(run_id))
        if not principal.can_see(project):
            raise PipelineNotFound(f"pipeline run {run_id!r} does not exist")
        return record

    def list_runs(
        self,
        principal: Principal,
        pipeline: str | None = None,
        project: str | None = None,
        status: str | None = None,
        limit: int = 50,
    ) -> list[PipelineRunRecord]:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIST}, got {limit!r}")
        if pipeline is not None:
            check_name("pipeline", pipeline)
        if status is not None and status not in {s.value for s in RunStatus}:
            raise InvalidInput(f"status must be one of {', '.join(s.value for s in RunStatus)}, got {status!r}")
        if project is not None or principal.project is not None:
            project = self._project_for(principal, project)
        with self.store.read() as unit:
            return unit.pipelines.list_runs(pipeline, project, limit, status)

    def step_run(self, principal: Principal, run_id: str, step: str) -> StepRun:
        record = self.get_run(principal, run_id)
        for found in record.steps:
            if found.step == step or found.run_id == step:
                return found
        names = ", ".join(s.step for s in record.steps) or "none"
        raise StepRunNotFound(f"pipeline run {run_id} has no step {step!r} (its steps: {names})")

    def step_log(self, principal: Principal, run_id: str, step: str) -> str:
        """The captured stdout and stderr of the step's last attempt ("" if it printed nothing)."""
        found = self.step_run(principal, run_id, step)
        if found.log_digest is None:
            return ""
        return b"".join(self.artifacts.iter_chunks(found.log_digest)).decode(errors="replace")

    def lineage(self, principal: Principal, reference: str) -> Lineage:
        """What produced `reference`: `models:/name/7` (or `@alias`), a step run id, or an output digest."""
        if not isinstance(reference, str) or not reference:
            raise InvalidInput("lineage needs a reference: models:/name/version, a step run id or an artifact digest")
        with self.store.read() as unit:
            if reference.startswith("models:/"):
                from loopml.registry import RegistryService

                version = RegistryService(self.store, self.default_project).resolve(principal, reference)
                subject = f"models:/{version.name}/{version.version}"
                frontier = [("model_version", f"{version.name}/{version.version}")]
                if not unit.pipelines.edges_into("model_version", [frontier[0][1]]):
                    frontier = [("step", version.run_id)]  # registered by hand from a step run
            elif len(reference) == 32 and set(reference) <= _HEX:
                unit.pipelines.get_step_run(reference)
                if not principal.can_see(unit.runs.project_of(reference)):
                    raise StepRunNotFound(f"step run {reference!r} does not exist")
                subject, frontier = f"step:{reference}", [("step", reference)]
            elif len(reference) == 64 and set(reference) <= _HEX:
                subject, frontier = (
                    f"artifact:{reference}",
                    [("artifact", reference), ("model", reference), ("dataset", reference)],
                )
            else:
                raise InvalidInput(
                    f"cannot read {reference!r} as a lineage subject: use models:/name/version, models:/name@alias, "
                    "a step run id (32 hex) or an output digest (64 hex)"
                )
            edges: list[LineageEdge] = []
            seen: set[tuple[str, str]] = set(frontier)
            step_ids: list[str] = [i for k, i in frontier if k == "step"]
            while frontier:
                found: list[LineageEdge] = []
                for kind in {k for k, _ in frontier}:
                    found.extend(unit.pipelines.edges_into(kind, [i for k, i in frontier if k == kind]))
                frontier = []
                for edge in found:
                    edges.append(edge)
                    node = (edge.source_kind, edge.source_id)
                    if node not in seen:
                        seen.add(node)
                        frontier.append(node)
                        if edge.source_kind == "step":
                            step_ids.append(edge.source_id)
            steps = []
            for step_id in dict.fromkeys(step_ids):
                try:
                    step = unit.pipelines.get_step_run(step_id)
                except NotFound:
                    continue
                if principal.can_see(unit.runs.project_of(step_id)):
                    steps.append(step)
            if not steps and not edges:
                raise NotFound(f"no lineage is recorded for {reference!r}")
            datasets = []
            for kind, digest in sorted(seen):
                if kind == "dataset":
                    try:
                        found_dataset = unit.datasets.get(digest)
                    except NotFound:
                        datasets.append({"digest": digest})
                        continue
                    datasets.append(
                        {
                            "digest": digest,
                            "rows": str(found_dataset.rows),
                            "name": found_dataset.name,
                            "source": found_dataset.source,
                        }
                    )
            code: dict[str, dict[str, Any]] = {}
            for step in steps:
                if step.pipeline_run_id not in code:
                    run = unit.runs.get(step.pipeline_run_id)
                    code[step.pipeline_run_id] = {
                        "pipeline": run.tags.get("loopml.pipeline"),
                        "ref": run.tags.get("loopml.pipeline.ref"),
                        "git_commit": run.tags.get("loopml.source.git_commit"),
                        "git_dirty": run.tags.get("loopml.source.git_dirty"),
                    }
        return Lineage(subject, tuple(edges), tuple(steps), tuple(datasets), code)


def _check_retriable(unit: Any, run_id: str) -> None:
    record, _ = unit.pipelines.get_run(run_id)
    if record.status == RunStatus.RUNNING.value:
        raise InvalidInput(
            f"pipeline run {run_id} is still RUNNING: retry it once it ended (a run whose process died is marked "
            "FAILED by the server's sweep)"
        )
    later = unit.pipelines.retried_by(run_id)
    if later is not None:
        raise AlreadyExists(f"pipeline run {run_id} was already retried as run {later}: retry {later} instead")


def holder_name(pid: int | None = None) -> str:
    """`host:pid:start`: the process running a run; the start time tells a reused pid apart."""
    import os
    import socket

    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_process_start(pid)}"


def _process_start(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return "0"


def holder_alive(holder: str) -> bool:
    """False only when `holder` names a process on this host that is gone (or whose pid was reused)."""
    import os
    import socket

    host, _, rest = holder.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another host's process: only its heartbeats tell
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if start and start != "0" and _process_start(pid) not in (start, "0"):
        return False
    return _not_zombie(pid)


def _not_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def package_prefix(output: Mapping[str, Any]) -> str:
    """Where a model a step returned lies among its step run's artifacts (registrable from there)."""
    return f"outputs/{output['meta']['name']}"


def _record_package(unit: Any, run_id: str, output: Mapping[str, Any]) -> None:
    prefix = package_prefix(output)
    files = output["meta"]["files"]
    for relative in sorted(files, key=lambda name: name == "loopml-model.json"):  # the manifest last
        digest, size = files[relative]
        unit.artifacts.put(run_id, f"{prefix}/{relative}", digest, size)


def _param_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
