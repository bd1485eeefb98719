"""Pipelines through the client: `client.pipelines.run(...)`, `submit`, runs, logs, retry, lineage and
schedules, and the SDK names `lm.step`, `lm.pipeline`, `lm.Model`, `lm.Dataset`, `lm.lineage`.

Reads, submissions by reference, retries and schedules are operations of the table, so they work the same on
both backends. `run()` of the embedded client drives the steps from this process; over HTTP it submits the
pipeline by reference to the server (which runs it in a child process) and waits for its end.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loopml.api import pipelines as ops
from loopml.domain import PipelineRunRecord, StepRun, StepState
from loopml.errors import InvalidInput
from loopml.pipelines import Dataset, Lineage, Model, Pipeline, pipeline, set_default_runner, step

if TYPE_CHECKING:
    from loopml.client.client import Client
    from loopml.domain.schedules import Firing, Schedule
    from loopml.pipelines import PipelineService

__all__ = ["Dataset", "Model", "PipelineRun", "Pipelines", "lineage", "pipeline", "step"]


class PipelineRun:
    """A pipeline run as stored: `status`, `steps` by name, `output(step)` to load a step's output, and
    `result` (the output of the step the pipeline function returned)."""

    def __init__(
        self, record: PipelineRunRecord, service: PipelineService | None, result_step: str | None = None
    ) -> None:
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
        if self._service is None:
            raise InvalidInput(
                "step outputs load from the artifact store, which this client reaches through the embedded backend "
                "only: use loopml.Client() on the server's stores, or log what you need as run artifacts"
            )
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
    def _embedded(self) -> PipelineService | None:
        return getattr(self._client.backend, "pipelines", None)

    @property
    def service(self) -> PipelineService:
        service = self._embedded
        if service is None:
            raise InvalidInput(
                "this drives the steps from this process on the store itself: use loopml.Client() without a server "
                "URL, or client.pipelines.submit(...) to have the server run the pipeline"
            )
        return service

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
        timeout: float | None = None,
    ) -> PipelineRun:
        """Run `pipeline` (an `@lm.pipeline` object, or `module:function` / `path.py:function`) to its end.

        Embedded, the steps run from this process. Over HTTP, the server runs it (`submit`) and this waits for
        the end (`timeout` seconds at most), calling `on_change` as the steps move."""
        if self._embedded is None:
            if executor_options or trigger or retry_of:
                raise InvalidInput("executor_options, trigger and retry_of are for the embedded client only")
            reference = pipeline if isinstance(pipeline, str) else pipeline.ref
            submitted = self.submit(reference, params, executor=executor, cache=cache, project=project)
            return self.wait(submitted.id, timeout=timeout, on_change=on_change)
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

    def submit(
        self,
        pipeline: Pipeline[...] | str,
        params: Mapping[str, Any] | None = None,
        *,
        executor: str = "process",
        cache: bool = True,
        project: str | None = None,
    ) -> PipelineRun:
        """Start `pipeline` in a process of its own and return the RUNNING run at once (`wait` for its end).

        Through a server, the reference is resolved on the server: `path.py:function` under its
        LOOPML_PIPELINE_ROOTS (relative paths from there), `module:function` of a LOOPML_PIPELINE_MODULES module.
        Bad references and parameters are refused before anything runs."""
        reference = pipeline if isinstance(pipeline, str) else pipeline.ref
        if self._embedded is not None:
            reference = _absolute(reference)
        record = self._client.backend.call(
            ops.SUBMIT_PIPELINE_RUN,
            pipeline=reference,
            params=dict(params or {}),
            executor=executor,
            cache=cache,
            project=project,
        )
        return PipelineRun(record, self._embedded)

    def wait(
        self,
        run_id: str,
        *,
        timeout: float | None = None,
        poll_seconds: float = 0.5,
        on_change: Callable[[PipelineRunRecord, dict[str, StepRun]], None] | None = None,
    ) -> PipelineRun:
        """Poll run `run_id` until it ended (or `timeout` seconds passed: TimeoutError); the last state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            found = self.get(run_id)
            if on_change is not None:
                on_change(found.record, dict(found.steps))
            if found.status != "RUNNING":
                return found
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"pipeline run {run_id} is still RUNNING after {timeout:g} s")
            time.sleep(poll_seconds)

    def retry(
        self,
        run_id: str,
        *,
        executor: str | None = None,
        on_change: Callable[[PipelineRunRecord, dict[str, StepRun]], None] | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> PipelineRun:
        """Run a failed run again as a new run: every step that finished there (same cache key) reuses its
        outputs; the failed steps and those after them run. A run is retried once (retry the retry after).

        Embedded with `wait=True`, the steps run from this process; otherwise the retry runs in a process of
        its own (the server's, over HTTP) and `wait=False` returns it RUNNING."""
        if self._embedded is not None and wait:
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
        record = self._client.backend.call(ops.RETRY_PIPELINE_RUN, run_id=run_id, executor=executor)
        if not wait:
            return PipelineRun(record, self._embedded)
        return self.wait(record.run_id, timeout=timeout, on_change=on_change)

    def get(self, run_id: str) -> PipelineRun:
        return PipelineRun(self._client.backend.call(ops.GET_PIPELINE_RUN, run_id=run_id), self._embedded)

    def runs(
        self, pipeline: str | None = None, *, status: str | None = None, limit: int = 50, project: str | None = None
    ) -> list[PipelineRunRecord]:
        """The latest runs (of `pipeline`, if given), newest first."""
        return self._client.backend.call(
            ops.LIST_PIPELINE_RUNS, pipeline=pipeline, project=project, status=status, limit=limit
        )

    def step(self, run_id: str, step: str) -> StepRun:
        """One step run of run `run_id`, by step name or step run id."""
        return self._client.backend.call(ops.GET_STEP_RUN, run_id=run_id, step=step)

    def logs(self, run_id: str, step: str) -> str:
        """What step `step` of run `run_id` printed (stdout and stderr of its last attempt)."""
        return self._client.backend.call(ops.GET_STEP_LOG, run_id=run_id, step=step)

    def lineage(self, reference: str) -> Lineage:
        """Which data and code produced `reference` (`models:/name/7`, a step run id or an output digest)."""
        return self._client.backend.call(ops.GET_LINEAGE, reference=reference)

    # -- schedules (run by `loopml server`, under its lease) -----------------------------------------

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
        of the pipeline, read from a local copy) and/or when a new version of dataset `dataset` is logged.
        Embedded, a path reference is made absolute here (the server does not share this shell's working
        directory); through a server it is resolved under the server's pipeline roots."""
        from loopml.pipelines import load_pipeline

        reference = pipeline if isinstance(pipeline, str) else pipeline.ref
        if cron is None and dataset is None:
            try:
                found = load_pipeline(pipeline) if isinstance(pipeline, str) else pipeline
            except InvalidInput as error:
                raise InvalidInput(
                    f"give cron= or dataset=: the pipeline's own schedule= is read from a local copy, and {error}"
                ) from None
            cron = found.schedule
        if self._embedded is not None:
            reference = _absolute(reference)
        return self._client.backend.call(
            ops.CREATE_SCHEDULE, name=name, pipeline=reference, cron=cron, dataset=dataset, params=params,
            executor=executor, project=project,
        )  # fmt: skip

    def schedules(self) -> list[Schedule]:
        return self._client.backend.call(ops.LIST_SCHEDULES)

    def unschedule(self, name: str) -> Schedule:
        """Stop firing schedule `name`; a run it started goes on to its end."""
        return self._client.backend.call(ops.DELETE_SCHEDULE, name=name)

    def firings(self, name: str | None = None, limit: int = 100) -> list[Firing]:
        """The latest firings (of schedule `name`), newest first: why each fired, its run and its state."""
        return self._client.backend.call(ops.LIST_FIRINGS, name=name, limit=limit)

    def fire(self, name: str, key: str, reason: str, context: Mapping[str, Any] | None = None) -> Firing | None:
        """Start schedule `name` once for event `key` (e.g. "alert:42"); None if that key fired before."""
        return self._client.backend.call(ops.FIRE_SCHEDULE, name=name, key=key, reason=reason, context=context)


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
