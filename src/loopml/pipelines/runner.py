"""The runner: drives one pipeline run's DAG in the calling process over any `Executor`.

It decides readiness, looks the cache up, builds `StepTask`s, retries with exponential backoff, lets the
steps that do not depend on a failed one finish, and records everything through `PipelineService`. Cache
hits are resolved without waiting and written in one batch with whatever else is pending, so a fully cached
run costs a read per step and a handful of transactions.
"""

from __future__ import annotations

import functools
import queue
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from loopml.domain import DatasetInput, LineageEdge, PipelineRunRecord, Principal, RunStatus, StepRun, StepState
from loopml.errors import InvalidPipeline
from loopml.pipelines.cache import components_of, explain_miss, key_of
from loopml.pipelines.executor import (
    ArtifactRef,
    Executor,
    StepResult,
    StepTask,
    executor_for,
    in_worker,
    now_ms,
    register_in_process,
)
from loopml.pipelines.graph import Graph, Node, Pipeline, function_ref
from loopml.pipelines.service import PipelineService, StepRecord

__all__ = ["artifact_location", "run_pipeline"]

_FINAL = {
    "finished": StepState.FINISHED,
    "failed": StepState.FAILED,
    "timed_out": StepState.TIMED_OUT,
    "killed": StepState.KILLED,
}
_KIND = {"loopml-dataset": "dataset", "loopml-model": "model"}
MAX_METRICS_BYTES = 64 * 1024
FLUSH_SECONDS = 0.2
"""Step-run records are written in batches at most this often while the run goes on (and at its end): the
bookkeeping of a crash's last moments can be lost, never an output, which is in the artifact store."""


def artifact_location(store: Any) -> tuple[str, str | None]:
    """The URL a worker opens the artifact store with, and the S3 endpoint if any."""
    if store._is_local:
        return str(store.root), None
    endpoint = (getattr(store.fs, "client_kwargs", None) or {}).get("endpoint_url")
    return f"s3://{store.root}", endpoint


def _node_id(ref: Mapping[str, Any]) -> tuple[str, str]:
    kind = _KIND.get(ref["serializer"], "artifact")
    if kind == "dataset":
        return kind, str(ref["meta"]["dataset_digest"])
    return kind, str(ref["digest"])


@dataclass
class _Step:
    node: Node
    run: StepRun
    key: str | None = None
    attempt: int = 0
    future: Future[StepResult] | None = None
    retry_at: float | None = None
    written: bool = False
    inputs: dict[str, ArtifactRef | tuple[ArtifactRef, ...]] = field(default_factory=dict)


class _Run:
    def __init__(
        self,
        service: PipelineService,
        principal: Principal,
        graph: Graph,
        record: PipelineRunRecord,
        executor: Executor,
        cache: bool,
        project: str,
        reuse: Mapping[str, StepRun],
        on_change: Callable[[PipelineRunRecord, dict[str, StepRun]], None] | None,
    ) -> None:
        self.service, self.principal, self.graph, self.record = service, principal, graph, record
        self.executor, self.cache, self.project, self.reuse = executor, cache, project, reuse
        self.on_change = on_change
        self.root, self.endpoint = artifact_location(service.artifacts)
        self.steps: dict[str, _Step] = {}
        self.answers: queue.SimpleQueue[tuple[_Step, Future[StepResult]]] = queue.SimpleQueue()
        """Attempts that answered, put there by their futures' callbacks: waiting costs the same for 1 or 1,000."""
        self.in_flight = 0
        self.retrying: dict[str, _Step] = {}
        self.completed: list[str] = []
        """Steps that reached a final state since the loop last looked."""
        self.outputs: dict[str, list[dict[str, Any]]] = {}
        self.pending: dict[str, StepRecord] = {}
        self.order = graph.order()
        self.latest = service.latest_steps(principal, project, graph.pipeline)
        self.flushed_at = time.monotonic()

    # -- bookkeeping -----------------------------------------------------------------------------

    def _queue(self, step: _Step, **extra: Any) -> None:
        params: Mapping[str, str] | None = None
        if not step.written:
            params = {k: _text(v) for k, v in step.node.params.items()}
        previous = self.pending.get(step.run.run_id)
        if previous is not None and previous.params is not None:
            params = previous.params  # still unwritten: write it as new, with its latest state
        merged: dict[str, Any] = {}
        if previous is not None:
            merged = {k: getattr(previous, k) for k in ("metrics", "datasets", "edges", "log")}
        merged.update({k: v for k, v in extra.items() if v})
        self.pending[step.run.run_id] = StepRecord(step.run, params, **merged)
        step.written = True

    def flush(self, force: bool = True) -> None:
        if not self.pending or (not force and time.monotonic() - self.flushed_at < FLUSH_SECONDS):
            return
        self.flushed_at = time.monotonic()
        records = list(self.pending.values())
        self.pending.clear()
        self.service.record_steps(self.principal, self.record.run_id, records)
        if self.on_change is not None:
            self.on_change(self.record, {s.node.name: s.run for s in self.steps.values()})

    # -- the loop --------------------------------------------------------------------------------

    def upstream_state(self, node: Node) -> str:
        states = [self.steps[n].run.state if n in self.steps else None for n in node.upstream]
        if any(s is not None and s.is_terminal and not s.is_done for s in states):
            return "broken"
        return "ready" if all(s is not None and s.is_done for s in states) else "waiting"

    def start(self, node: Node) -> None:
        run = StepRun(
            run_id=uuid.uuid4().hex,
            pipeline_run_id=self.record.run_id,
            step=node.name,
            state=StepState.PENDING,
            started_at=now_ms(),
            upstream=tuple(node.upstream),
        )
        step = _Step(node, run)
        self.steps[node.name] = step
        for name, handle in node.inputs.items():
            if isinstance(handle, tuple):
                step.inputs[name] = tuple(ArtifactRef.from_json(self.outputs[h.node][0]) for h in handle)
            else:
                step.inputs[name] = ArtifactRef.from_json(self.outputs[handle.node][0])
        components = components_of(node.step.func, node.params, step.inputs, node.step.serializer)
        step.key = key_of(components)
        step.run = replace(step.run, cache_key=step.key, components=components, inputs=_inputs_json(step.inputs))
        reused = self.reuse.get(node.name)
        use_cache = (self.cache and node.step.cache) or reused is not None
        latest = self.latest.get(node.name)
        if use_cache:
            if reused is not None and reused.cache_key == step.key and self.service.outputs_exist(reused):
                hits = [reused]
            elif latest is not None and latest.cache_key == step.key and self.service.outputs_exist(latest):
                hits = [latest]
            else:
                hits = self.service.cache_hits(self.principal, self.project, step.key)
            if hits:
                hit = hits[0]
                origin = hit.cached_from or hit.run_id
                why = f"hit: key {step.key[:12]} matches step run {origin[:8]}"
                step.run = replace(
                    step.run,
                    state=StepState.CACHED,
                    decision=why,
                    outputs=hit.outputs,
                    cached_from=hit.cached_from or hit.run_id,
                    ended_at=now_ms(),
                )
                self.outputs[node.name] = hit.outputs
                self._queue(step, edges=self._edges(step), datasets=self._datasets(step))
                return
        if not self.cache:
            decision = "disabled: cache=False for the run"
        elif not node.step.cache:
            decision = f"disabled: step `{node.step.name}` has cache=False"
        else:
            function_key = f"{node.step.func.__module__}:{node.step.func.__qualname__}"
            decision = explain_miss(node.name, function_key, components, latest.components if latest else None)
        step.run = replace(step.run, state=StepState.RUNNING, decision=decision)
        self._queue(step)
        self.submit(step)

    def submit(self, step: _Step) -> None:
        step.attempt += 1
        step.retry_at = None
        node = step.node
        function = node.step.func
        pickled = None
        if node.step.pickle:
            import cloudpickle

            pickled = cloudpickle.dumps(function)
        task = StepTask(
            step=node.name,
            function=function_ref(function),
            params=node.params,
            inputs=step.inputs,
            artifact_root=self.root,
            s3_endpoint_url=self.endpoint,
            output_serializer=node.step.serializer,
            allow_pickle=node.step.pickle,
            pickled_function=pickled,
            attempt=step.attempt,
            timeout=node.step.timeout,
            resources=node.step.resources,
        )
        step.run = replace(step.run, attempts=step.attempt)
        self.in_flight += 1
        step.future = self.executor.submit(task)
        step.future.add_done_callback(functools.partial(self._answered, step))

    def _answered(self, step: _Step, future: Future[StepResult]) -> None:
        self.answers.put((step, future))

    def complete(self, step: _Step, result: StepResult) -> None:
        step.future = None
        retries_left = step.attempt <= step.node.step.retries
        if result.status != "finished" and retries_left:
            delay = step.node.step.retry_delay * 2 ** (step.attempt - 1)
            step.retry_at = time.monotonic() + delay
            self.retrying[step.node.name] = step
            step.run = replace(
                step.run,
                error=f"attempt {step.attempt} {result.status}: {result.error}; retrying in {delay:g} s",
                traceback=result.traceback,
            )
            self._queue(step, log=result.log or None)
            return
        outputs = [o.to_json() for o in result.outputs]
        step.run = replace(
            step.run,
            state=_FINAL[result.status],
            outputs=outputs,
            error=result.error,
            traceback=result.traceback,
            ended_at=result.ended_at or now_ms(),
        )
        self.completed.append(step.node.name)
        if result.status == "finished":
            self.outputs[step.node.name] = outputs
            self._queue(
                step,
                log=result.log or None,
                metrics=self._metrics(outputs),
                edges=self._edges(step),
                datasets=self._datasets(step),
            )
        else:
            self._queue(step, log=result.log or None)

    def _edges(self, step: _Step) -> list[LineageEdge]:
        me = ("step", step.run.run_id)
        edges = []
        for value in step.run.inputs.values():
            for ref in value if isinstance(value, list) else [value]:
                kind, ident = _node_id(ref)
                edges.append(LineageEdge(kind, ident, *me, self.record.run_id))
        for ref in step.run.outputs:
            kind, ident = _node_id(ref)
            edges.append(LineageEdge(*me, kind, ident, self.record.run_id))
        return edges

    def _datasets(self, step: _Step) -> list[DatasetInput]:
        found = []
        for value in step.run.inputs.values():
            for ref in value if isinstance(value, list) else [value]:
                if ref["serializer"] == "loopml-dataset":
                    meta = ref["meta"]
                    schema = tuple((str(c), str(t)) for c, t in meta["schema"])
                    found.append(
                        DatasetInput(
                            meta["name"],
                            meta["dataset_digest"],
                            schema,
                            meta["rows"],
                            meta["source"] or "pipeline",
                            "training",
                        )
                    )
        return found

    def _metrics(self, outputs: list[dict[str, Any]]) -> dict[str, float]:
        """A step returning a dict of numbers (an evaluation) has them logged as its run's metrics."""
        if len(outputs) != 1 or outputs[0]["serializer"] != "json" or outputs[0]["size"] > MAX_METRICS_BYTES:
            return {}
        value = orjson.loads(b"".join(self.service.artifacts.iter_chunks(outputs[0]["digest"])))
        if not isinstance(value, dict) or not value:
            return {}
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value.values()):
            return {}
        return {k: float(v) for k, v in value.items()}

    def skip(self, node: Node) -> None:
        broken = [n for n in node.upstream if n in self.steps and not self.steps[n].run.state.is_done]
        run = StepRun(
            run_id=uuid.uuid4().hex,
            pipeline_run_id=self.record.run_id,
            step=node.name,
            state=StepState.SKIPPED,
            decision=f"skipped: upstream step `{broken[0]}` did not finish",
            started_at=now_ms(),
            ended_at=now_ms(),
            upstream=tuple(node.upstream),
        )
        step = _Step(node, run)
        self.steps[node.name] = step
        self._queue(step)

    def drive(self) -> None:
        downstream = self.graph.downstream()
        candidates = [name for name in self.order if not self.graph.nodes[name].upstream]
        terminal: set[str] = set()
        while True:
            while candidates:
                name = candidates.pop(0)
                if name in self.steps:
                    continue
                node = self.graph.nodes[name]
                state = self.upstream_state(node)
                if state == "ready":
                    self.start(node)
                elif state == "broken":
                    self.skip(node)
                else:
                    continue
                if self.steps[name].run.state.is_terminal:
                    terminal.add(name)
                    candidates.extend(downstream[name])
            while self.completed:
                name = self.completed.pop()
                if name not in terminal and self.steps[name].run.state.is_terminal:
                    terminal.add(name)
                    candidates.extend(downstream[name])
            if candidates:
                continue
            if len(terminal) == len(self.graph.nodes):
                break
            self.flush(force=False)
            now = time.monotonic()
            for name, step in list(self.retrying.items()):
                if step.retry_at is not None and step.retry_at <= now:
                    del self.retrying[name]
                    self.submit(step)
            waits = [s.retry_at - now for s in self.retrying.values() if s.retry_at is not None]
            if self.pending:
                waits.append(self.flushed_at + FLUSH_SECONDS - now)
            timeout = max(0.0, min(waits)) if waits else None
            if not self.in_flight:
                time.sleep(timeout or 0)
                continue
            try:
                step, future = self.answers.get(timeout=timeout)
            except queue.Empty:
                continue
            while True:  # every answer already in, then back to readiness
                self.in_flight -= 1
                self.complete(step, future.result())
                try:
                    step, future = self.answers.get_nowait()
                except queue.Empty:
                    break

    def kill_running(self) -> None:
        for step in self.steps.values():
            if not step.run.state.is_terminal:
                if step.future is not None:
                    step.future.cancel()
                step.run = replace(step.run, state=StepState.KILLED, error="the run was interrupted", ended_at=now_ms())
                self._queue(step)

    def result_metrics(self) -> dict[str, float]:
        result = self.graph.result
        if hasattr(result, "node") and result.node in self.outputs:
            return self._metrics(self.outputs[result.node])
        return {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _inputs_json(inputs: Mapping[str, ArtifactRef | tuple[ArtifactRef, ...]]) -> dict[str, Any]:
    return {k: [r.to_json() for r in v] if isinstance(v, tuple) else v.to_json() for k, v in inputs.items()}


def _check_reachable(graph: Graph, executor: Executor) -> None:
    if executor.name == "inline":
        return
    for node in graph.nodes.values():
        ref = function_ref(node.step.func)
        if node.step.pickle:
            continue
        main_without_file = ref.module == "__loopml_main__" and ref.file is None  # python -c, a REPL, a notebook
        if "<locals>" in ref.qualname or main_without_file or (ref.file is None and _unimportable(ref.module)):
            raise InvalidPipeline(
                f"step {node.step.name!r} is defined where a worker process cannot import it ({ref}): define it at "
                "the top level of a module, run with executor='inline', or opt in with @lm.step(pickle=True)"
            )


def _unimportable(module: str) -> bool:
    import importlib.util
    import sys

    found = sys.modules.get(module)
    if found is not None and getattr(found, "__spec__", None) is not None:
        return False
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def run_pipeline(
    service: PipelineService,
    principal: Principal,
    pipeline: Pipeline[...],
    params: Mapping[str, Any],
    executor: Executor | str = "process",
    *,
    cache: bool = True,
    trigger: Mapping[str, Any] | None = None,
    retry_of: str | None = None,
    project: str | None = None,
    tags: Mapping[str, object] | None = None,
    executor_options: Mapping[str, Any] | None = None,
    on_change: Callable[[PipelineRunRecord, dict[str, StepRun]], None] | None = None,
    on_start: Callable[[PipelineRunRecord], None] | None = None,
) -> PipelineRunRecord:
    """Run `pipeline` with `params` to the end and return its record (status FINISHED, or FAILED with the
    failing steps' errors). With `retry_of`, every step that finished in that run and whose cache key is
    unchanged reuses its outputs, whatever the cache settings. `on_start` is told the run as soon as it exists."""
    if in_worker():
        raise InvalidPipeline(
            f"pipeline {pipeline.name!r} was started inside a step's worker process: the module that defines the "
            'steps starts a run when it is imported; guard the call with `if __name__ == "__main__":`'
        )
    graph = pipeline.build(**params)
    resolved = pipeline.resolve_params(params)
    owned = isinstance(executor, str)
    engine = executor_for(executor, **(executor_options or {})) if isinstance(executor, str) else executor
    try:
        _check_reachable(graph, engine)
        check_store = getattr(engine, "check_artifact_root", None)
        if check_store is not None:  # e.g. a file:// store with a remote Ray cluster: refused before the run
            check_store(artifact_location(service.artifacts)[0])
        reuse: dict[str, StepRun] = {}
        if retry_of is not None:
            earlier = service.get_run(principal, retry_of)
            reuse = {s.step: s for s in earlier.steps if s.state.is_done}
        for node in graph.nodes.values():
            register_in_process(function_ref(node.step.func), node.step.func)
        record = service.start_run(
            principal,
            pipeline.name,
            pipeline.ref,
            engine.name,
            resolved,
            trigger=trigger,
            retry_of=retry_of,
            project=project,
            tags=tags,
        )
        if on_start is not None:
            on_start(record)
        scope = project or principal.project or service.default_project
        run = _Run(service, principal, graph, record, engine, cache, scope, reuse, on_change)
        try:
            run.drive()
        except BaseException:
            run.kill_running()
            run.flush()
            service.finish_run(principal, record.run_id, RunStatus.KILLED)
            raise
        ok = all(s.run.state.is_done for s in run.steps.values())
        status = RunStatus.FINISHED if ok else RunStatus.FAILED
        last = list(run.pending.values())
        run.pending.clear()
        finished = service.finish_run(
            principal, record.run_id, status, run.result_metrics() if ok else None, records=last
        )
        if ok:
            _register_models(service, principal, finished)
        return finished
    finally:
        if owned:
            engine.close()


def _register_models(service: PipelineService, principal: Principal, record: PipelineRunRecord) -> None:
    for step in record.steps:
        if step.state is not StepState.FINISHED:
            continue
        for output in step.outputs:
            name = output.get("meta", {}).get("register") if output["serializer"] == "loopml-model" else None
            if name:
                service.register_model(principal, step, output, name)
