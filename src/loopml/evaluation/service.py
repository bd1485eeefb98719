"""`EvaluationService`: score a model version on labelled rows and keep the result as an `Evaluation`.

Scoring runs in the process that holds the data (`evaluate`; the SDK and CLI do the same through
`evaluate_rows` and then `record_evaluation` over either backend). The server only stores and serves records.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from loopml.domain import ModelVersion, Principal, Role, parse_model_uri
from loopml.domain.evaluation import TASKS, Evaluation, MetricComparison
from loopml.domain.wire import decode_float
from loopml.errors import InvalidInput, ModelNotFound, NotFound
from loopml.evaluation.data import DATASET_PREFIX, digest_of, read_file, read_rows
from loopml.evaluation.metrics import Outcomes
from loopml.evaluation.scoring import Predictor, Scores, bootstrap_comparison, score_frame, slice_metrics
from loopml.registry import RegistryService
from loopml.store import MetadataStore, Unit
from loopml.store.audit import now_ms
from loopml.store.registered_models import ModelRow

__all__ = ["DEFAULT_RESAMPLES", "EvaluationService", "Scored", "evaluate_rows", "resolve_baseline"]

DEFAULT_RESAMPLES = 200
MAX_METRICS = 200
MAX_SLICE_COLUMNS = 20
_METRIC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")

ModelSource = Callable[[ModelVersion], Predictor]
"""Loads the package of a version (verified) for scoring, e.g. `lambda v: client.models.load(v.uri)`."""


@dataclass(frozen=True)
class Scored:
    """What `evaluate_rows` computed: the record's fields, the candidate's scores, the rows and the baseline's."""

    fields: dict[str, Any]
    scores: Scores
    frame: pd.DataFrame
    baseline: Scores | None


def resolve_baseline(model: ModelVersion, baseline: str | int | None) -> str | None:
    """The reference of the baseline: `@champion` or `champion` (an alias of the same model), `3` (a version
    of the same model), or a full `models:/name@alias` / `models:/name/3` of the same model."""
    if baseline is None:
        return None
    text = str(baseline).strip()
    if text.startswith("models:/"):
        reference = parse_model_uri(text)
        if reference.name != model.name:
            raise InvalidInput(
                f"the baseline must be a version of the same model ({model.name!r}), not of {reference.name!r}"
            )
        return text
    if text.startswith("@"):
        return f"models:/{model.name}{text}"
    if text.isdigit():
        return f"models:/{model.name}/{int(text)}"
    if not text:
        raise InvalidInput("the baseline is empty: give @alias or a version number")
    return f"models:/{model.name}@{text}"


def evaluate_rows(
    version: ModelVersion,
    model: Predictor,
    frame: pd.DataFrame,
    source: str,
    label: str,
    task: str | None = None,
    slices: Sequence[str] = (),
    baseline: tuple[ModelVersion, Predictor] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Scored:
    """Score `model` (the package of `version`) on `frame`, and the baseline on the same rows if given."""
    if len(slices) > MAX_SLICE_COLUMNS:
        raise InvalidInput(f"at most {MAX_SLICE_COLUMNS} slice columns, got {len(slices)}")
    scores = score_frame(model, frame, label, task)
    comparison: tuple[MetricComparison, ...] = ()
    baseline_scores = None
    if baseline is not None:
        baseline_scores = score_frame(baseline[1], frame, label, scores.task)
        comparison = bootstrap_comparison(
            scores.outcomes, _aligned(scores.outcomes, baseline_scores.outcomes), resamples, seed
        )
    fields = {
        "name": version.name,
        "version": version.version,
        "task": scores.task,
        "label": label,
        "dataset_digest": digest_of(frame),
        "dataset_source": source,
        "rows": len(frame),
        "metrics": scores.metrics,
        "slices": slice_metrics(frame, scores.outcomes, list(slices)),
        "baseline_version": None if baseline is None else baseline[0].version,
        "comparison": comparison,
    }
    return Scored(fields, scores, frame, baseline_scores)


def _aligned(candidate: Outcomes, baseline: Outcomes) -> Outcomes:
    if candidate.task != "binary" or candidate.classes == baseline.classes:
        return baseline
    raise InvalidInput(
        f"the baseline's classes {list(baseline.classes)} differ from the candidate's {list(candidate.classes)}"
    )


def _check_metrics(what: str, metrics: object) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise InvalidInput(f"{what} must be an object of metric name -> number")
    if len(metrics) > MAX_METRICS:
        raise InvalidInput(f"{what} has {len(metrics)} metrics; the limit is {MAX_METRICS}")
    found = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not _METRIC_NAME.match(name):
            raise InvalidInput(f"{what}: {name!r} is not a metric name (letters, digits and _, at most 64)")
        if isinstance(value, bool):
            raise InvalidInput(f"{what}[{name!r}] must be a number, got a boolean")
        try:
            found[name] = decode_float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f'{what}[{name!r}] must be a number (or "NaN"), got {value!r}') from None
    return found


def _check_comparison(comparison: object) -> tuple[MetricComparison, ...]:
    if comparison is None:
        return ()
    if isinstance(comparison, tuple) and all(isinstance(c, MetricComparison) for c in comparison):
        return comparison
    if not isinstance(comparison, Sequence) or isinstance(comparison, str):
        raise InvalidInput("comparison must be a list of {metric, value, baseline, difference, low, high}")
    found = []
    for i, item in enumerate(comparison):
        if isinstance(item, MetricComparison):
            found.append(item)
            continue
        if not isinstance(item, Mapping) or set(item) != {"metric", "value", "baseline", "difference", "low", "high"}:
            raise InvalidInput(f"comparison[{i}] must have exactly metric, value, baseline, difference, low, high")
        numbers = _check_metrics(f"comparison[{i}]", {k: v for k, v in item.items() if k != "metric"})
        metric = item["metric"]
        if not isinstance(metric, str) or not _METRIC_NAME.match(metric):
            raise InvalidInput(f"comparison[{i}].metric must be a metric name, got {metric!r}")
        found.append(MetricComparison(metric=metric, **numbers))
    return tuple(found)


def _check_slices(slices: object) -> dict[str, dict[str, dict[str, float]]]:
    if slices is None:
        return {}
    if not isinstance(slices, Mapping) or len(slices) > MAX_SLICE_COLUMNS:
        raise InvalidInput(f"slices must be an object column -> group -> metrics, at most {MAX_SLICE_COLUMNS} columns")
    found: dict[str, dict[str, dict[str, float]]] = {}
    for column, groups in slices.items():
        if not isinstance(column, str) or not isinstance(groups, Mapping) or len(groups) > 50:
            raise InvalidInput(f"slices[{column!r}] must be an object of at most 50 groups -> metrics")
        found[column] = {
            str(group)[:200]: _check_metrics(f"slices[{column!r}][{group!r}]", m) for group, m in groups.items()
        }
    return found


class EvaluationService:
    """Evaluations of model versions. Viewers read them; editors record them; a project-scoped token sees the
    evaluations of its project's models only."""

    def __init__(self, store: MetadataStore, registry: RegistryService, models: ModelSource | None = None) -> None:
        self.store = store
        self.registry = registry
        self.models = models

    # -- access ------------------------------------------------------------------------------------

    @staticmethod
    def _model(unit: Unit, principal: Principal, name: str) -> ModelRow:
        found = unit.models.find(name) if isinstance(name, str) else None
        if found is None or not principal.can_see(found.project):
            raise ModelNotFound(f"registered model {name!r} does not exist")
        return found

    def _load(self, version: ModelVersion) -> Predictor:
        if self.models is None:
            raise InvalidInput("this evaluation service has no model source: score in the client (lm.evaluate)")
        return self.models(version)

    def rows(self, data: Any) -> tuple[pd.DataFrame, str]:
        """The rows `data` names: a DataFrame, a Parquet/CSV path, or `dataset:<digest>` (a logged dataset read
        from its source file, which must still have the logged content)."""
        if isinstance(data, str) and data.startswith(DATASET_PREFIX):
            digest = data.removeprefix(DATASET_PREFIX)
            if not _DIGEST.match(digest):
                raise InvalidInput(f"{data!r}: a dataset is named by its sha256 digest (64 hex characters)")
            with self.store.read() as unit:
                dataset = unit.datasets.get(digest)
            from pathlib import Path

            frame = read_file(Path(dataset.source))
            if digest_of(frame) != digest:
                raise InvalidInput(
                    f"the file {dataset.source!r} of dataset {digest[:12]} no longer has the logged content"
                )
            return frame, f"{DATASET_PREFIX}{digest}"
        return read_rows(data)

    # -- scoring -----------------------------------------------------------------------------------

    def score(
        self,
        principal: Principal,
        model: str,
        data: Any,
        label: str,
        task: str | None = None,
        slices: Sequence[str] = (),
        baseline: str | int | None = None,
        resamples: int = DEFAULT_RESAMPLES,
        seed: int = 0,
    ) -> Scored:
        """Score without storing (gates use it to measure on the same rows)."""
        version = self.registry.resolve(principal, model)
        frame, source = self.rows(data)
        reference = resolve_baseline(version, baseline)
        pair = None
        if reference is not None:
            other = self.registry.resolve(principal, reference)
            pair = (other, self._load(other))
        return evaluate_rows(version, self._load(version), frame, source, label, task, slices, pair, resamples, seed)

    def evaluate(
        self,
        principal: Principal,
        model: str,
        data: Any,
        label: str,
        task: str | None = None,
        slices: Sequence[str] = (),
        baseline: str | int | None = None,
        resamples: int = DEFAULT_RESAMPLES,
        seed: int = 0,
    ) -> Evaluation:
        """Score the version `model` names (`models:/bike@challenger`) on `data` and store the evaluation.

        `data`: a DataFrame, a Parquet/CSV path or `dataset:<digest>`; `label`: the column of true values;
        `slices`: columns to report metrics per group of; `baseline`: `@champion` or a version number of the
        same model, scored on the same rows (differences with a paired bootstrap interval).
        """
        principal.require(Role.EDITOR)
        scored = self.score(principal, model, data, label, task, slices, baseline, resamples, seed)
        return self.record_evaluation(principal, **scored.fields)

    # -- records -----------------------------------------------------------------------------------

    def record_evaluation(
        self,
        principal: Principal,
        name: str,
        version: int,
        task: str,
        label: str,
        dataset_digest: str,
        dataset_source: str,
        rows: int,
        metrics: Mapping[str, float | str],
        slices: Mapping[str, Any] | None = None,
        baseline_version: int | None = None,
        comparison: Sequence[Any] | None = None,
    ) -> Evaluation:
        """Store an evaluation computed where the data is (audited as `model.evaluate`)."""
        principal.require(Role.EDITOR)
        if task not in TASKS:
            raise InvalidInput(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        if not isinstance(label, str) or not 0 < len(label) <= 250:
            raise InvalidInput("label must be the name of the label column (1 to 250 characters)")
        if not isinstance(dataset_digest, str) or not _DIGEST.match(dataset_digest):
            raise InvalidInput("dataset_digest must be a sha256 digest (64 lowercase hex characters)")
        if not isinstance(dataset_source, str) or len(dataset_source) > 4000 or "\x00" in dataset_source:
            raise InvalidInput("dataset_source must be text of at most 4000 characters")
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise InvalidInput(f"rows must be a positive integer, got {rows!r}")
        checked = _check_metrics("metrics", metrics)
        if not checked:
            raise InvalidInput("an evaluation needs at least one metric")
        checked_slices = _check_slices(slices)
        checked_comparison = _check_comparison(comparison)
        if checked_comparison and baseline_version is None:
            raise InvalidInput("a comparison needs the baseline_version it compares with")
        with self.store.write(principal.actor) as unit:
            model = self._model(unit, principal, name)
            target = unit.model_versions.get(model, version)
            if baseline_version is not None:
                unit.model_versions.get(model, baseline_version)
            evaluation = Evaluation(
                id=uuid.uuid4().hex,
                name=model.name,
                version=target.version,
                project=model.project,
                task=task,
                label=label,
                dataset_digest=dataset_digest,
                dataset_source=dataset_source,
                rows=rows,
                metrics=checked,
                slices=checked_slices,
                baseline_version=baseline_version,
                comparison=checked_comparison,
                created_at=now_ms(),
                created_by=principal.actor,
            )
            unit.evaluations.add(model, target.manifest_digest, evaluation)
            return evaluation

    def get_evaluation(self, principal: Principal, evaluation_id: str) -> Evaluation:
        if not isinstance(evaluation_id, str) or not re.fullmatch(r"[0-9a-f]{32}", evaluation_id):
            raise NotFound(f"evaluation {evaluation_id!r} does not exist")
        with self.store.read() as unit:
            model_id, _, evaluation = unit.evaluations.get(evaluation_id)
            if not principal.can_see(evaluation.project):
                raise NotFound(f"evaluation {evaluation_id!r} does not exist")
            found = unit.models.get_many([model_id])
            name = found[0].name if found else "(deleted)"
        return _renamed(evaluation, name)

    def list_evaluations(
        self, principal: Principal, name: str, version: int | None = None, max_results: int = 100
    ) -> list[Evaluation]:
        """The evaluations of a model (or of one version of it), newest first."""
        if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= 1000:
            raise InvalidInput(f"max_results must be an integer from 1 to 1000, got {max_results!r}")
        with self.store.read() as unit:
            model = self._model(unit, principal, name)
            digest = unit.model_versions.get(model, version).manifest_digest if version is not None else None
            return unit.evaluations.list(model, version, digest, max_results)

    def latest(self, principal: Principal, name: str, version: int) -> Evaluation | None:
        found = self.list_evaluations(principal, name, version, 1)
        return found[0] if found else None


def _renamed(evaluation: Evaluation, name: str) -> Evaluation:
    from dataclasses import replace

    return replace(evaluation, name=name)


def finite(value: float) -> bool:
    return not math.isnan(value)
