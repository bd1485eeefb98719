"""Evaluations of model versions (`client.evaluations`, `lm.evaluate`, `loopml evaluate`)."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loopml.api import evaluation as ops
from loopml.domain.evaluation import Evaluation, comparison_to_json
from loopml.domain.wire import encode_float

if TYPE_CHECKING:
    from loopml.client.client import Client
    from loopml.evaluation import Scored


def _floats(values: dict[str, float]) -> dict[str, float | str]:
    return {k: encode_float(v) for k, v in values.items()}


class Evaluations:
    """Score a version on labelled rows here (the data never leaves this process) and store the record.

    evaluation = client.evaluations.evaluate("models:/bike-demand@challenger", "eval.parquet", label="cnt",
                                             baseline="@champion", slices=["season"])
    evaluation.metrics["rmse"], [(c.metric, c.difference, c.low, c.high) for c in evaluation.comparison]
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._backend = client.backend

    def score(
        self,
        model: str,
        data: Any,
        label: str,
        *,
        task: str | None = None,
        slices: Sequence[str] = (),
        baseline: str | int | None = None,
        resamples: int | None = None,
        seed: int = 0,
    ) -> Scored:
        """Score without storing anything (what `evaluate` and `client.gates.check` build on)."""
        from loopml.evaluation import DEFAULT_RESAMPLES, evaluate_rows, read_rows, resolve_baseline

        version = self._client.models.resolve(model)
        frame, source = read_rows(data)
        pair = None
        reference = resolve_baseline(version, baseline)
        if reference is not None:
            other = self._client.models.resolve(reference)
            pair = (other, self._client.models.load(other.uri))
        loaded = self._client.models.load(version.uri)
        return evaluate_rows(
            version, loaded, frame, source, label, task, list(slices), pair,
            DEFAULT_RESAMPLES if resamples is None else resamples, seed,
        )  # fmt: skip

    def record(self, scored: Scored) -> Evaluation:
        fields = dict(scored.fields)
        fields["metrics"] = _floats(fields["metrics"])
        fields["slices"] = {c: {g: _floats(m) for g, m in groups.items()} for c, groups in fields["slices"].items()}
        fields["comparison"] = [comparison_to_json(c) for c in fields["comparison"]] or None
        return self._backend.call(ops.RECORD_EVALUATION, **fields)

    def evaluate(
        self,
        model: str,
        data: Any,
        label: str,
        *,
        task: str | None = None,
        slices: Sequence[str] = (),
        baseline: str | int | None = None,
        resamples: int | None = None,
        seed: int = 0,
    ) -> Evaluation:
        """Score the version `model` names on `data` (a DataFrame or a .parquet/.csv path) and store the
        evaluation on it. `baseline` (`@champion`, or a version number) is scored on the same rows; each metric
        then carries the difference and its 95% paired bootstrap interval (`resamples`, seeded by `seed`)."""
        return self.record(
            self.score(model, data, label, task=task, slices=slices, baseline=baseline, resamples=resamples, seed=seed)
        )

    def list(self, name: str, version: int | None = None, max_results: int = 100) -> builtins.list[Evaluation]:
        """The evaluations of model `name` (or of one version), newest first."""
        return self._backend.call(ops.LIST_EVALUATIONS, name=name, version=version, max_results=max_results)

    def get(self, evaluation_id: str) -> Evaluation:
        return self._backend.call(ops.GET_EVALUATION, evaluation_id=evaluation_id)


def evaluate(
    model: str,
    data: Any,
    label: str,
    *,
    task: str | None = None,
    slices: Sequence[str] = (),
    baseline: str | int | None = None,
    resamples: int | None = None,
    seed: int = 0,
) -> Evaluation:
    """Score the version `model` names (`models:/bike-demand@challenger`) on labelled rows and store the
    evaluation on it: `lm.evaluate(uri, "eval.parquet", label="cnt", baseline="@champion", slices=["season"])`.
    The rows never leave this process; see `Client.evaluations.evaluate`."""
    from loopml.client.fluent import get_client

    return get_client().evaluations.evaluate(
        model, data, label, task=task, slices=slices, baseline=baseline, resamples=resamples, seed=seed
    )


def gate(
    model: str,
    policy: Any,
    *,
    data: Any = None,
    label: str | None = None,
    task: str | None = None,
    slices: Sequence[str] = (),
    evaluation: str | None = None,
) -> Any:
    """Judge the version `model` names against a gate policy (a YAML path or text) and store the result:
    `lm.gate(uri, "gates/bike.yaml", data="eval.parquet", label="cnt").passed`. See `Client.gates.check`."""
    from loopml.client.fluent import get_client

    return get_client().gates.check(
        model, policy, data=data, label=label, task=task, slices=tuple(slices), evaluation=evaluation
    )
