"""The tracking service: every tracking operation, checked, authorised and audited."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, cast

from loopml.artifacts import ArtifactStore, sanitize_path
from loopml.domain import (
    ArtifactRecord,
    Dataset,
    DatasetInput,
    Experiment,
    Metric,
    MetricColumns,
    MetricSeries,
    Page,
    Principal,
    Role,
    Run,
    RunStatus,
)
from loopml.domain.paging import decode_page_token, encode_page_token
from loopml.domain.search import MAX_RESULTS as MAX_RESULTS
from loopml.domain.search import OrderBy, SearchFilter, parse_filter, parse_order_by
from loopml.domain.validation import check_key, check_metric_columns, check_name, check_values
from loopml.errors import (
    ExperimentNotFound,
    InvalidInput,
    InvalidStatus,
    PermissionDenied,
    RunNotFound,
)
from loopml.store import MetadataStore, Unit
from loopml.store.audit import now_ms

if TYPE_CHECKING:
    import numpy as np

DATASET_ROLES = ("training", "validation", "test", "reference")
MAX_ID = 2**31 - 1
"""Experiment ids are 32-bit in the schema; a larger id cannot exist (and PostgreSQL would reject it)."""
_DIGEST_CHARS = set("0123456789abcdef")
_BATCH_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class TrackingService:
    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, default_project: str = "default") -> None:
        self.store = store
        self.artifacts = artifacts
        self.default_project = default_project

    # -- access ------------------------------------------------------------------------------------

    def _project_for(self, principal: Principal, project: str | None) -> str:
        if project is None:
            return principal.project or self.default_project
        check_name("project", project)
        if not principal.can_see(project):
            raise PermissionDenied(
                f"the token in use is scoped to project {principal.project!r} and cannot reach {project!r}"
            )
        return project

    def _visible_run(self, unit: Unit, principal: Principal, run_id: str) -> None:
        _check_run_id(run_id)
        if not principal.can_see(unit.runs.project_of(run_id)):
            raise RunNotFound(f"run {run_id!r} does not exist")

    def _live_run(self, unit: Unit, principal: Principal, run_id: str) -> None:
        """`_visible_run` for a write: a deleted run takes no more data until it is restored."""
        _check_run_id(run_id)
        project, deleted_at = unit.runs.state_of(run_id)
        if not principal.can_see(project):
            raise RunNotFound(f"run {run_id!r} does not exist")
        if deleted_at is not None:
            raise InvalidInput(f"run {run_id} is deleted; restore it before logging to it")

    def _visible_experiment(self, unit: Unit, principal: Principal, experiment_id: int) -> Experiment:
        if isinstance(experiment_id, bool) or not isinstance(experiment_id, int):
            raise InvalidInput(f"experiment_id must be an integer, got {experiment_id!r}")
        if not 1 <= experiment_id <= MAX_ID:
            raise ExperimentNotFound(f"experiment {experiment_id} does not exist")
        experiment = unit.experiments.get(experiment_id)
        if not principal.can_see(experiment.project):
            raise ExperimentNotFound(f"experiment {experiment_id} does not exist")
        return experiment

    # -- experiments -------------------------------------------------------------------------------

    def get_or_create_experiment(self, principal: Principal, name: str, project: str | None = None) -> Experiment:
        check_name("experiment", name)
        project = self._project_for(principal, project)
        with self.store.read() as unit:
            found = unit.experiments.find(project, name)
        if found is not None:
            return found
        principal.require(Role.EDITOR)
        with self.store.write(principal.actor) as unit:
            return unit.experiments.get_or_create(unit.projects.get_or_create(project), name)

    def create_experiment(
        self,
        principal: Principal,
        name: str,
        project: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> Experiment:
        """A new experiment; `AlreadyExists` if the project has one of that name (get_or_create does not fail)."""
        principal.require(Role.EDITOR)
        check_name("experiment", name)
        checked_tags = check_values("tag", tags or {})
        project = self._project_for(principal, project)
        with self.store.write(principal.actor) as unit:
            experiment = unit.experiments.create(unit.projects.get_or_create(project), name)
            if checked_tags:
                unit.experiments.set_tags(experiment, checked_tags)
                experiment = unit.experiments.get(experiment.id)
            return experiment

    def get_experiment(self, principal: Principal, experiment_id: int) -> Experiment:
        with self.store.read() as unit:
            return self._visible_experiment(unit, principal, experiment_id)

    def find_experiment(self, principal: Principal, name: str, project: str | None = None) -> Experiment:
        project = self._project_for(principal, project)
        with self.store.read() as unit:
            found = unit.experiments.find(project, check_name("experiment", name))
        if found is None:
            raise ExperimentNotFound(f"experiment {name!r} does not exist in project {project!r}")
        return found

    def list_experiments(
        self,
        principal: Principal,
        project: str | None = None,
        name: str | None = None,
        deleted: bool | None = False,
    ) -> list[Experiment]:
        """The experiments the principal sees (of `project` if given); with `name`, that one or none;
        `deleted`: False the live ones, True the deleted ones, None all (a name finds either)."""
        if name is not None:
            try:
                return [self.find_experiment(principal, name, project)]
            except ExperimentNotFound:
                return []
        if project is not None:
            project = self._project_for(principal, project)
        elif principal.project is not None:
            project = principal.project
        with self.store.read() as unit:
            return unit.experiments.list(project, deleted)

    def delete_experiment(self, principal: Principal, experiment_id: int) -> Experiment:
        """Mark the experiment and its live runs deleted; `restore_experiment` brings both back. Deleting a
        deleted experiment changes nothing (it keeps its first deletion time)."""
        principal.require(Role.EDITOR)
        with self.store.write(principal.actor) as unit:
            experiment = self._visible_experiment(unit, principal, experiment_id)
            if experiment.deleted_at is None:
                unit.experiments.delete(experiment_id)
            return unit.experiments.get(experiment_id)

    def restore_experiment(self, principal: Principal, experiment_id: int) -> Experiment:
        """Undelete the experiment and the runs that were deleted with it (not those deleted before)."""
        principal.require(Role.EDITOR)
        with self.store.write(principal.actor) as unit:
            experiment = self._visible_experiment(unit, principal, experiment_id)
            if experiment.deleted_at is not None:
                unit.experiments.restore(experiment_id, experiment.deleted_at)
            return unit.experiments.get(experiment_id)

    def rename_experiment(self, principal: Principal, experiment_id: int, name: str) -> Experiment:
        principal.require(Role.EDITOR)
        check_name("experiment", name)
        with self.store.write(principal.actor) as unit:
            experiment = self._visible_experiment(unit, principal, experiment_id)
            if experiment.name != name:
                unit.experiments.rename(experiment, name)
            return unit.experiments.get(experiment_id)

    def set_experiment_tags(self, principal: Principal, experiment_id: int, tags: Mapping[str, object]) -> Experiment:
        """Set tags of the experiment (merged: tags not named keep their value)."""
        principal.require(Role.EDITOR)
        checked = check_values("tag", tags)
        with self.store.write(principal.actor) as unit:
            unit.experiments.set_tags(self._visible_experiment(unit, principal, experiment_id), checked)
            return unit.experiments.get(experiment_id)

    def delete_experiment_tag(self, principal: Principal, experiment_id: int, key: str) -> Experiment:
        """Remove tag `key` of the experiment (a key it does not have is a no-op)."""
        principal.require(Role.EDITOR)
        check_key("tag", key)
        with self.store.write(principal.actor) as unit:
            unit.experiments.delete_tag(self._visible_experiment(unit, principal, experiment_id), key)
            return unit.experiments.get(experiment_id)

    # -- runs --------------------------------------------------------------------------------------

    def create_run(
        self,
        principal: Principal,
        experiment_id: int,
        name: str | None = None,
        parent_run_id: str | None = None,
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
        start_time: int | None = None,
    ) -> Run:
        principal.require(Role.EDITOR)
        run_id = uuid.uuid4().hex
        name = check_name("run", name) if name is not None else f"run-{run_id[:8]}"
        checked_params = check_values("param", params or {})
        checked_tags = check_values("tag", tags or {})
        if start_time is not None and (isinstance(start_time, bool) or not isinstance(start_time, int)):
            raise InvalidInput(f"start_time must be milliseconds since the epoch, got {start_time!r}")
        with self.store.write(principal.actor) as unit:
            experiment = self._visible_experiment(unit, principal, experiment_id)
            if experiment.deleted_at is not None:
                raise InvalidInput(f"experiment {experiment_id} is deleted; restore it before creating runs in it")
            if parent_run_id is not None:
                self._visible_run(unit, principal, parent_run_id)
                if unit.runs.project_of(parent_run_id) != experiment.project:
                    raise InvalidInput("a nested run must be in the same project as its parent run")
            unit.runs.create(run_id, experiment_id, name, start_time or now_ms(), parent_run_id)
            unit.runs.log_params(run_id, checked_params)
            unit.runs.set_tags(run_id, checked_tags)
            return unit.runs.get(run_id)

    def get_run(self, principal: Principal, run_id: str) -> Run:
        with self.store.read() as unit:
            self._visible_run(unit, principal, run_id)
            return unit.runs.get(run_id)

    def end_run(self, principal: Principal, run_id: str, status: str, end_time: int | None = None) -> Run:
        return self.update_run(principal, run_id, status=status, end_time=end_time)

    def update_run(
        self,
        principal: Principal,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        name: str | None = None,
    ) -> Run:
        """Set the run's status (a terminal one stamps `end_time`, now if not given) and/or rename it."""
        principal.require(Role.EDITOR)
        new_status: RunStatus | None = None
        if status is not None:
            try:
                new_status = RunStatus(status)
            except ValueError:
                raise InvalidStatus(
                    f"status must be one of {', '.join(s.value for s in RunStatus)}, got {status!r}"
                ) from None
        if end_time is not None and (isinstance(end_time, bool) or not isinstance(end_time, int)):
            raise InvalidInput(f"end_time must be milliseconds since the epoch, got {end_time!r}")
        if name is not None:
            check_name("run", name)
        with self.store.write(principal.actor) as unit:
            self._live_run(unit, principal, run_id)
            if new_status is not None:
                when = None if new_status is RunStatus.RUNNING else (end_time or now_ms())
                unit.runs.set_status(run_id, new_status, when)
            if name is not None:
                unit.runs.rename(run_id, name)
            return unit.runs.get(run_id)

    def delete_run(self, principal: Principal, run_id: str) -> Run:
        """Mark the run deleted: searches leave it out, it takes no more data, `restore_run` undoes it.
        Deleting a deleted run changes nothing (it keeps its first deletion time)."""
        principal.require(Role.EDITOR)
        with self.store.write(principal.actor) as unit:
            self._visible_run(unit, principal, run_id)
            if unit.runs.state_of(run_id)[1] is None:
                unit.runs.delete(run_id)
            return unit.runs.get(run_id)

    def restore_run(self, principal: Principal, run_id: str) -> Run:
        principal.require(Role.EDITOR)
        with self.store.write(principal.actor) as unit:
            self._visible_run(unit, principal, run_id)
            if unit.runs.state_of(run_id)[1] is not None:
                unit.runs.restore(run_id)
            return unit.runs.get(run_id)

    def delete_tag(self, principal: Principal, run_id: str, key: str) -> Run:
        """Remove tag `key` of a live run (`TagNotFound` if it has no such tag, as in MLflow)."""
        principal.require(Role.EDITOR)
        check_key("tag", key)
        with self.store.write(principal.actor) as unit:
            self._live_run(unit, principal, run_id)
            unit.runs.delete_tag(run_id, key)
            return unit.runs.get(run_id)

    def log_batch(
        self,
        principal: Principal,
        run_id: str,
        metrics: MetricColumns,
        params: Mapping[str, object],
        tags: Mapping[str, object],
    ) -> None:
        """Metrics, params and tags in one transaction: all stored, or none."""
        principal.require(Role.EDITOR)
        checked_params = check_values("param", params)
        checked_tags = check_values("tag", tags)
        check_metric_columns(metrics.keys, metrics.values, metrics.steps, metrics.timestamps)
        with self.store.write(principal.actor) as unit:
            self._live_run(unit, principal, run_id)
            unit.runs.log_params(run_id, checked_params)
            unit.runs.set_tags(run_id, checked_tags)
            if len(metrics):
                unit.metrics.log(run_id, metrics)

    def log_params(self, principal: Principal, run_id: str, params: Mapping[str, object]) -> None:
        principal.require(Role.EDITOR)
        checked = check_values("param", params)
        with self.store.write(principal.actor) as unit:
            self._live_run(unit, principal, run_id)
            unit.runs.log_params(run_id, checked)

    def set_tags(self, principal: Principal, run_id: str, tags: Mapping[str, object]) -> None:
        principal.require(Role.EDITOR)
        checked = check_values("tag", tags)
        with self.store.write(principal.actor) as unit:
            self._live_run(unit, principal, run_id)
            unit.runs.set_tags(run_id, checked)

    def log_metrics(self, principal: Principal, run_id: str, batch: MetricColumns, batch_key: str | None = None) -> int:
        """Store every point of the batch or none (one transaction); returns how many were stored.

        `batch_key` (1 to 64 letters, digits, `_ - . :`) makes the call idempotent: a batch the run has
        already applied under that key is not stored again, and the first answer is returned."""
        principal.require(Role.EDITOR)
        if batch_key is not None and (not isinstance(batch_key, str) or not _BATCH_KEY.fullmatch(batch_key)):
            raise InvalidInput(
                f"a metric batch key must be 1 to 64 letters, digits, '_', '-', '.' or ':', got {batch_key!r}"
            )
        check_metric_columns(batch.keys, batch.values, batch.steps, batch.timestamps)
        with self.store.write(principal.actor) as unit:
            self._live_run(unit, principal, run_id)
            return unit.metrics.log(run_id, batch, batch_key)

    def metric_history(self, principal: Principal, run_id: str, key: str) -> list[Metric]:
        check_key("metric", key)
        with self.store.read() as unit:
            self._visible_run(unit, principal, run_id)
            return unit.metrics.history(run_id, key)

    def metric_history_arrays(
        self, principal: Principal, run_id: str, key: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`metric_history` as arrays (steps, timestamps, values): what charts of long histories read."""
        check_key("metric", key)
        with self.store.read() as unit:
            self._visible_run(unit, principal, run_id)
            return unit.metrics.history_arrays(run_id, key)

    def metric_series(self, principal: Principal, run_id: str, key: str) -> MetricSeries:
        """The points of `metric_history` as columns (the binary `metric-series` route sends these)."""
        check_key("metric", key)
        with self.store.read() as unit:
            self._visible_run(unit, principal, run_id)
            return unit.metrics.series(run_id, key)

    # -- datasets ----------------------------------------------------------------------------------

    def log_dataset(self, principal: Principal, run_id: str, data: DatasetInput) -> Dataset:
        principal.require(Role.EDITOR)
        check_name("dataset", data.name)
        if data.role not in DATASET_ROLES:
            raise InvalidInput(f"dataset role must be one of {', '.join(DATASET_ROLES)}, got {data.role!r}")
        if len(data.digest) != 64 or not set(data.digest) <= _DIGEST_CHARS:
            raise InvalidInput(f"dataset digest must be 64 lowercase hex characters (sha256), got {data.digest!r}")
        if isinstance(data.rows, bool) or not isinstance(data.rows, int) or data.rows < 0:
            raise InvalidInput(f"dataset rows must be a non-negative integer, got {data.rows!r}")
        if len(data.source) > 4096 or "\x00" in data.source:
            raise InvalidInput("dataset source must be at most 4096 characters, without NUL characters")
        for column, dtype in data.schema:
            check_name("dataset column", column)
            check_name("dataset column type", dtype)
        with self.store.write(principal.actor) as unit:
            self._live_run(unit, principal, run_id)
            return unit.datasets.link(run_id, data)

    def run_datasets(self, principal: Principal, run_id: str) -> list[Dataset]:
        with self.store.read() as unit:
            self._visible_run(unit, principal, run_id)
            return unit.datasets.for_run(run_id)

    # -- artifacts ---------------------------------------------------------------------------------

    def log_artifact(
        self,
        principal: Principal,
        run_id: str,
        path: str,
        content: Iterable[bytes],
        expected_sha256: str | None = None,
    ) -> ArtifactRecord:
        """Stream `content` into the artifact store (content-addressed), then record it under `path`."""
        principal.require(Role.EDITOR)
        path = sanitize_path(path)
        with self.store.read() as unit:
            self._live_run(unit, principal, run_id)
        blob = self.artifacts.put(content, expected_sha256=expected_sha256)
        with self.store.write(principal.actor) as unit:
            return unit.artifacts.put(run_id, path, blob.digest, blob.size)

    def list_artifacts(self, principal: Principal, run_id: str, prefix: str | None = None) -> list[ArtifactRecord]:
        if prefix:
            prefix = sanitize_path(prefix)
        with self.store.read() as unit:
            self._visible_run(unit, principal, run_id)
            return unit.artifacts.list(run_id, prefix)

    def open_artifact(self, principal: Principal, run_id: str, path: str) -> tuple[ArtifactRecord, Iterator[bytes]]:
        path = sanitize_path(path)
        with self.store.read() as unit:
            self._visible_run(unit, principal, run_id)
            record = unit.artifacts.get(run_id, path)
        return record, self.artifacts.iter_chunks(record.digest)

    # -- search ------------------------------------------------------------------------------------

    def search_runs(
        self,
        principal: Principal,
        experiment_ids: Sequence[int],
        filter: str | SearchFilter | None = None,
        order_by: Sequence[str] | Sequence[OrderBy] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        deleted: bool | None = False,
    ) -> Page[Run]:
        """One page of the runs that match; `deleted`: False the live runs (the default), True the deleted
        ones, None both. `filter` and `order_by` are text of the search language, or already parsed (another
        wire protocol's dialect, translated)."""
        if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS:
            raise InvalidInput(f"max_results must be an integer from 1 to {MAX_RESULTS}, got {max_results!r}")
        if not experiment_ids:
            raise InvalidInput("search needs at least one experiment")
        parsed = filter if isinstance(filter, SearchFilter) else parse_filter(filter)
        order = _order(order_by)
        offset = decode_page_token(page_token)
        with self.store.read() as unit:
            for experiment_id in experiment_ids:
                self._visible_experiment(unit, principal, experiment_id)
            ids = unit.runs.search_ids(list(experiment_ids), parsed, order, max_results + 1, offset, deleted)
            found = unit.runs.get_many(ids[:max_results])
        next_token = encode_page_token(offset + max_results) if len(ids) > max_results else None
        return Page(items=found, next_page_token=next_token)


def _check_run_id(run_id: object) -> None:
    if not isinstance(run_id, str) or len(run_id) != 32 or not set(run_id) <= _DIGEST_CHARS:
        raise RunNotFound(f"run {run_id!r} does not exist (run ids are 32 hex characters)")


def _order(order_by: Sequence[str] | Sequence[OrderBy] | None) -> tuple[OrderBy, ...]:
    if order_by and not isinstance(order_by, str) and all(isinstance(item, OrderBy) for item in order_by):
        return tuple(item for item in order_by if isinstance(item, OrderBy))
    return parse_order_by(cast("Sequence[str] | None", order_by))
