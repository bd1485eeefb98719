"""Pipelines through the client: `client.pipelines.run(...)`, runs, logs, retry and lineage, and the SDK
names `lm.step`, `lm.pipeline`, `lm.Model`, `lm.Dataset`, `lm.lineage`.

Runs go through the embedded backend: the runner drives the steps from this process and records them in
the store. (Over HTTP the same calls come with the server's pipeline operations.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loopml.domain import PipelineRunRecord, StepRun, StepState
from loopml.errors import InvalidInput
from loopml.pipelines import Dataset, Lineage, Model, Pipeline, pipeline, set_default_runner, step

if TYPE_CHECKING:
    from loopml.client.client import Client
    from loopml.domain.schedules import Firing, Schedule
    from loopml.pipelines import PipelineService, ScheduleService

__all__ = ["Dataset", "Model", "PipelineRun", "Pipelines", "lineage", "pipeline", "step"]


class PipelineRun:
    """A pipeline run as stored: `status`, `steps` by name, `output(step)` to load a step's output, and
    `result` (the output of the step the pipeline function returned)."""

    def __init__(self, record: PipelineRunRecord, service: PipelineService, result_step: str | None = None) -> None:
        self.record = record
        self._service = service
        self.result_step = result_step
        self.id = record.run_id
        self.status = record.status
        self.steps: dict[str, StepRun] = {s.step: s for s in record.steps}

    def output(self, step: str) -> Any:
        """The value step `step` produced (loaded from the artifact store)."""
        from loopml.pipelines import ArtifactRef, load_value

        found = self.steps.get(step)
        if found is None:
            raise InvalidInput(f"run {self.id} has no step {step!r} (its steps: {', '.join(self.steps)})")
        if not found.state.is_done or not found.outputs:
            raise InvalidInput(f"step {step!r} of run {self.id} has no output: it is {found.state.value}")
        return load_value(ArtifactRef.from_json(found.outputs[0]), self._service.artifacts)

    @property
    def result(self) -> Any:
        if self.result_step is None:
            raise InvalidInput("this run object does not know which step the pipeline returned; use output(step)")
        return self.output(self.result_step)

    @property
    def failed_steps(self) -> list[StepRun]:
        return [
            s
            for s in self.steps.values()
            if s.state.is_terminal and not s.state.is_done and s.state is not StepState.SKIPPED
        ]

    def __repr__(self) -> str:
        states = ", ".join(f"{s.step}={s.state.value}" for s in self.steps.values())
        return f"<PipelineRun {self.record.pipeline} {self.id} {self.status}: {states}>"


class Pipelines:
    """`client.pipelines`: run pipelines and read their runs."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @property
    def service(self) -> PipelineService:
        service = getattr(self._client.backend, "pipelines", None)
        if service is None:
            raise InvalidInput(
                "pipelines run through the embedded client for now: use loopml.Client() without a server URL "
                "(the server's pipeline operations are not available yet)"
            )
        return service  # type: ignore[no-any-return]

    @property
    def _principal(self) -> Any:
        return self._client.backend.principal  # type: ignore[attr-defined]

    def run(
        self,
        pipeline: Pipeline[...] | str,
        params: Mapping[str, Any] | None = None,
        *,
        executor: str = "process",
        cache: bool = True,
        executor_options: Mapping[str, Any] | None = None,
        trigger: Mapping[str, Any] | None = None,
        project: str | None = None,
        on_change: Callable[[PipelineRunRecord, dict[str, StepRun]], None] | None = None,
        retry_of: str | None = None,
    ) -> PipelineRun:
        """Run `pipeline` (an `@lm.pipeline` object, or `module:function` / `path.py:function`) to its end."""
        from loopml.client.environment import capture
        from loopml.pipelines import load_pipeline, run_pipeline

        found = load_pipeline(pipeline) if isinstance(pipeline, str) else pipeline
        record = run_pipeline(
            self.service,
            self._principal,
            found,
            dict(params or {}),
            executor,
            cache=cache,
            trigger=trigger,
            retry_of=retry_of,
            project=project,
            tags=capture(),
            executor_options=executor_options,
            on_change=on_change,
        )
        return self._wrap(record, found)

    def _wrap(self, record: PipelineRunRecord, found: Pipeline[...] | None = None) -> PipelineRun:
        result_step = None
        if found is not None:
            graph = found.build(**record.params)
            result_step = getattr(graph.result, "node", None)
        return PipelineRun(record, self.service, result_step)

    def retry(
        self,
        run_id: str,
        *,
        executor: str | None = None,
        on_change: Callable[[PipelineRunRecord, dict[str, StepRun]], None] | None = None,
    ) -> PipelineRun:
        """Run a failed run again as a new run: every step that finished there (same cache key) reuses its
        outputs; the failed steps and those after them run."""
        from loopml.pipelines import load_pipeline

        earlier = self.service.get_run(self._principal, run_id)
        found = load_pipeline(earlier.ref)
        return self.run(
            found,
            earlier.params,
            executor=executor or earlier.executor,
            trigger={"kind": "retry", "run_id": run_id},
            on_change=on_change,
            retry_of=run_id,
        )

    def get(self, run_id: str) -> PipelineRun:
        return PipelineRun(self.service.get_run(self._principal, run_id), self.service)

    def runs(
        self, pipeline: str | None = None, *, status: str | None = None, limit: int = 50
    ) -> list[PipelineRunRecord]:
        """The latest runs (of `pipeline`, if given), newest first."""
        return self.service.list_runs(self._principal, pipeline, status=status, limit=limit)

    def logs(self, run_id: str, step: str) -> str:
        """What step `step` of run `run_id` printed (stdout and stderr of its last attempt)."""
        return self.service.step_log(self._principal, run_id, step)

    def lineage(self, reference: str) -> Lineage:
        """Which data and code produced `reference` (`models:/name/7`, a step run id or an output digest)."""
        return self.service.lineage(self._principal, reference)

    # -- schedules (run by `loopml server`, under its lease) -----------------------------------------

    @property
    def _schedules(self) -> ScheduleService:
        service = getattr(self._client.backend, "schedules", None)
        if service is None:
            raise InvalidInput(
                "schedules are written through the embedded client for now: use loopml.Client() on the server's "
                "database (LOOPML_DATABASE_URL) without a server URL"
            )
        return service  # type: ignore[no-any-return]

    def schedule(
        self,
        name: str,
        pipeline: Pipeline[...] | str,
        *,
        cron: str | None = None,
        dataset: str | None = None,
        params: Mapping[str, Any] | None = None,
        executor: str = "process",
        project: str | None = None,
    ) -> Schedule:
        """Have `loopml server` run `pipeline` on `cron` ticks (UTC; default: the `@lm.pipeline(schedule=...)`
        of the pipeline) and/or when a new version of dataset `dataset` is logged. A path reference is made
        absolute here, since the server does not share this shell's working directory."""
        from loopml.pipelines import load_pipeline

        found = load_pipeline(pipeline) if isinstance(pipeline, str) else pipeline
        if cron is None and dataset is None:
            cron = found.schedule
        return self._schedules.create_schedule(
            self._principal, name, _absolute(found.ref), cron=cron, dataset=dataset, params=params,
            executor=executor, project=project,
        )  # fmt: skip

    def schedules(self) -> list[Schedule]:
        return self._schedules.schedules(self._principal)

    def unschedule(self, name: str) -> Schedule:
        """Stop firing schedule `name`; a run it started goes on to its end."""
        return self._schedules.delete_schedule(self._principal, name)

    def firings(self, name: str | None = None, limit: int = 100) -> list[Firing]:
        """The latest firings (of schedule `name`), newest first: why each fired, its run and its state."""
        return self._schedules.firings(self._principal, name, limit)

    def fire(self, name: str, key: str, reason: str, context: Mapping[str, Any] | None = None) -> Firing | None:
        """Start schedule `name` once for event `key` (e.g. "alert:42"); None if that key fired before."""
        return self._schedules.fire(self._principal, name, key, reason, context)


def _absolute(reference: str) -> str:
    where, _, function = reference.rpartition(":")
    if where.endswith(".py"):
        from pathlib import Path

        return f"{Path(where).resolve()}:{function}"
    return reference


def _run_with_default_client(pipeline: Pipeline[...], params: Mapping[str, Any], **options: Any) -> PipelineRun:
    from loopml.client.fluent import get_client

    return get_client().pipelines.run(pipeline, params, **options)


def lineage(reference: str) -> Lineage:
    """Which data and code produced `reference`: `lm.lineage("models:/bike-demand/7")`.

    The answer lists the datasets at the roots, every step run on the way with the digests of its code and
    its params, and the git commit of each pipeline run."""
    from loopml.client.fluent import get_client

    return get_client().pipelines.lineage(reference)


set_default_runner(_run_with_default_client)
