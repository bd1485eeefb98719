"""The loop's evaluation and gate: the challenger and the champion scored on the same fresh labelled rows (the
`lm.Dataset` the pipeline made from the trigger's time range), judged by `loopml.gates` against the policy's
gate YAML, stored as evaluation and gate records on the version like `loopml gate` does.

Model packages are fetched by `loopml.evaluation.StoreModelSource` (verified against the registry's digest);
pickle-based flavors are refused in the API server process (as everywhere there)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from loopml.domain import Principal
from loopml.errors import InvalidInput
from loopml.store import MetadataStore

__all__ = ["LoopGate", "fresh_rows"]


def fresh_rows(pipelines: Any, principal: Principal, run_id: str, label: str) -> tuple[Any, str] | None:
    """The newest `lm.Dataset` output of pipeline run `run_id` that has column `label`, with its step, or None."""
    from loopml.pipelines import ArtifactRef, load_value

    record = pipelines.get_run(principal, run_id)
    found = None
    for step in record.steps:
        for output in step.outputs:
            if output.get("serializer") != "loopml-dataset":
                continue
            ref = ArtifactRef(
                output["serializer"], output["digest"], output.get("size", 0), output.get("type", "Dataset"),
                output.get("meta", {}),
            )  # fmt: skip
            value = load_value(ref, pipelines.artifacts)
            frame = getattr(value, "data", None)
            if frame is not None and label in getattr(frame, "columns", ()):
                found = (frame, step.step)
    return found


class LoopGate:
    """Scores and gates a loop's challenger with `loopml.evaluation` and `loopml.gates`."""

    def __init__(self, store: MetadataStore, registry: Any, pipelines: Any) -> None:
        from loopml.evaluation import EvaluationService, StoreModelSource
        from loopml.gates import GateService

        self.pipelines = pipelines
        cache = Path(tempfile.gettempdir()) / "loopml-retrain-packages"
        self.evaluations = EvaluationService(store, registry, StoreModelSource(store, pipelines.artifacts, cache))
        self.gates = GateService(store, self.evaluations)

    def check(self, principal: Principal, model: str, version: int, policy: str, run_id: str, label: str | None) -> Any:
        """The stored gate result of `model/version` against `policy`, evaluated on the run's fresh rows."""
        from loopml.gates import parse_policy

        parsed = parse_policy(policy)
        needs_rows = bool(parsed.metrics or parsed.fairness)
        if not needs_rows:
            return self.gates.check(principal, f"{model}/{version}", parsed)
        if label is None:
            raise InvalidInput(
                "the gate policy checks metrics, so the policy needs `label` (the label column of the fresh rows "
                "the pipeline returns as an lm.Dataset)"
            )
        rows = fresh_rows(self.pipelines, principal, run_id, label)
        if rows is None:
            raise InvalidInput(
                f"pipeline run {run_id} returned no lm.Dataset with column {label!r}: the loop evaluates challenger "
                "and champion on the fresh labelled rows the pipeline returns"
            )
        frame, _ = rows
        return self.gates.check(principal, f"{model}/{version}", parsed, data=frame, label=label)
