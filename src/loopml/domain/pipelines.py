"""Pipeline runs, step runs and lineage edges as stored: the part of a pipeline the run model cannot hold.

A pipeline run is a tracking run and each step run a nested run of it; these records add the step's state,
its cache key and the decision taken on it, its inputs and outputs, and the edges of the lineage graph.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class StepState(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    CACHED = "cached"
    """Not run: the outputs of an earlier step run with the same cache key were reused."""
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    KILLED = "killed"
    SKIPPED = "skipped"
    """Not run because a step it depends on did not finish."""

    @property
    def is_done(self) -> bool:
        """Finished with outputs a later step (or a retry) can use."""
        return self in (StepState.FINISHED, StepState.CACHED)

    @property
    def is_terminal(self) -> bool:
        return self not in (StepState.PENDING, StepState.RUNNING)


@dataclass(frozen=True, slots=True)
class StepRun:
    run_id: str
    """The nested tracking run of this step run."""
    pipeline_run_id: str
    step: str
    state: StepState
    cache_key: str | None = None
    decision: str = ""
    """Why the step ran or was skipped: "hit: key ...", "miss: source of helper `clean` changed"."""
    components: dict[str, Any] = field(default_factory=dict)
    """What the cache key was made of (code digests, params, input digests, serializers, packages)."""
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    error: str | None = None
    traceback: str | None = None
    log_digest: str | None = None
    cached_from: str | None = None
    """The step run whose outputs a cache hit reused."""
    started_at: int | None = None
    ended_at: int | None = None
    upstream: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PipelineRunRecord:
    run_id: str
    pipeline: str
    ref: str
    """Where the pipeline function is: `module:function` or `path.py:function`."""
    executor: str
    params: dict[str, Any]
    trigger: dict[str, Any]
    status: str
    start_time: int
    end_time: int | None
    retry_of: str | None = None
    steps: tuple[StepRun, ...] = ()


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """`source` was used to make `target`. Kinds: dataset (by content digest), step (a step run's id),
    artifact (a step output's digest), model_version (`name/version`)."""

    source_kind: str
    source_id: str
    target_kind: str
    target_id: str
    pipeline_run_id: str | None = None
    created_at: int = 0


def step_run_to_json(step: StepRun) -> dict[str, Any]:
    return {
        "run_id": step.run_id,
        "pipeline_run_id": step.pipeline_run_id,
        "step": step.step,
        "state": step.state.value,
        "cache_key": step.cache_key,
        "decision": step.decision,
        "attempts": step.attempts,
        "error": step.error,
        "traceback": step.traceback,
        "components": step.components,
        "inputs": step.inputs,
        "outputs": step.outputs,
        "log_digest": step.log_digest,
        "upstream": list(step.upstream),
        "cached_from": step.cached_from,
        "started_at": step.started_at,
        "ended_at": step.ended_at,
    }


def pipeline_run_to_json(record: PipelineRunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "pipeline": record.pipeline,
        "ref": record.ref,
        "executor": record.executor,
        "status": record.status,
        "params": record.params,
        "trigger": record.trigger,
        "retry_of": record.retry_of,
        "start_time": record.start_time,
        "end_time": record.end_time,
        "steps": [step_run_to_json(s) for s in record.steps],
    }


def step_run_from_json(data: dict[str, Any]) -> StepRun:
    return StepRun(
        run_id=data["run_id"],
        pipeline_run_id=data["pipeline_run_id"],
        step=data["step"],
        state=StepState(data["state"]),
        cache_key=data.get("cache_key"),
        decision=data.get("decision", ""),
        components=data.get("components") or {},
        inputs=data.get("inputs") or {},
        outputs=data.get("outputs") or [],
        attempts=data.get("attempts", 0),
        error=data.get("error"),
        traceback=data.get("traceback"),
        log_digest=data.get("log_digest"),
        cached_from=data.get("cached_from"),
        started_at=data.get("started_at"),
        ended_at=data.get("ended_at"),
        upstream=tuple(data.get("upstream") or ()),
    )


def pipeline_run_from_json(data: dict[str, Any]) -> PipelineRunRecord:
    return PipelineRunRecord(
        run_id=data["run_id"],
        pipeline=data["pipeline"],
        ref=data["ref"],
        executor=data["executor"],
        params=data["params"],
        trigger=data["trigger"],
        status=data["status"],
        start_time=data["start_time"],
        end_time=data.get("end_time"),
        retry_of=data.get("retry_of"),
        steps=tuple(step_run_from_json(s) for s in data.get("steps") or ()),
    )


@dataclass(frozen=True)
class Lineage:
    """What produced a subject (a model version, a step run, an artifact): the edges walked backwards
    from it, the step runs on the way with their code, the datasets at the roots, and where the code was
    (git commit and dirty flag of each pipeline run)."""

    subject: str
    edges: tuple[LineageEdge, ...]
    steps: tuple[StepRun, ...]
    datasets: tuple[dict[str, Any], ...]
    code: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """The short form people read (`loopml pipeline lineage --json`)."""
        return {
            "subject": self.subject,
            "edges": [
                {"source": f"{e.source_kind}:{e.source_id}", "target": f"{e.target_kind}:{e.target_id}"}
                for e in self.edges
            ],
            "steps": [
                {
                    "run_id": s.run_id,
                    "step": s.step,
                    "pipeline_run_id": s.pipeline_run_id,
                    "state": s.state.value,
                    "code": s.components.get("code", {}),
                    "params": s.components.get("params", {}),
                }
                for s in self.steps
            ],
            "datasets": list(self.datasets),
            "code": self.code,
        }


def lineage_to_wire(lineage: Lineage) -> dict[str, Any]:
    """The whole answer, as the REST API sends it (the short form plus every step run in full)."""
    return {
        **lineage.to_json(),
        "edges": [
            {
                "source_kind": e.source_kind,
                "source_id": e.source_id,
                "target_kind": e.target_kind,
                "target_id": e.target_id,
                "pipeline_run_id": e.pipeline_run_id,
                "created_at": e.created_at,
            }
            for e in lineage.edges
        ],
        "steps": [step_run_to_json(s) for s in lineage.steps],
    }


def lineage_from_wire(data: dict[str, Any]) -> Lineage:
    return Lineage(
        subject=data["subject"],
        edges=tuple(
            LineageEdge(
                e["source_kind"],
                e["source_id"],
                e["target_kind"],
                e["target_id"],
                e.get("pipeline_run_id"),
                e.get("created_at", 0),
            )
            for e in data["edges"]
        ),
        steps=tuple(step_run_from_json(s) for s in data["steps"]),
        datasets=tuple(data["datasets"]),
        code=data["code"],
    )
