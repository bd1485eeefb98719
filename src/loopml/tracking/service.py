"""The tracking service: every tracking operation, checked, authorised and audited."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence

from loopml.artifacts import ArtifactStore, sanitize_path
from loopml.domain import (
    ArtifactRecord,
    Dataset,
    DatasetInput,
    Experiment,
    Metric,
    MetricColumns,
    Page,
    Principal,
    Role,
    Run,
    RunStatus,
)
from loopml.domain.paging import decode_page_token, encode_page_token
from loopml.domain.search import parse_filter, parse_order_by
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

DATASET_ROLES = ("training", "validation", "test", "reference")
MAX_RESULTS = 50_000
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
        if not isinstance(run_id, str) or len(run_id) != 32 or not set(run_id) <= _DIGEST_CHARS:
            raise RunNotFound(f"run {run_id!r} does not exist (run ids are 32 hex characters)")
        if not principal.can_see(unit.runs.project_of(run_id)):
            raise RunNotFound(f"run {run_id!r} does not exist")

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

    def create_experiment(self, principal: Principal, name: str, project: str | None = None) -> Experiment:
        """A new experiment; `AlreadyExists` if the project has one of that name (get_or_create does not fail)."""
        principal.require(Role.EDITOR)
        check_name("experiment", name)
        project = self._project_for(principal, project)
        with self.store.write(principal.actor) as unit:
            return unit.experiments.create(unit.projects.get_or_create(project), name)

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

    def list_experiments(self, principal: Principal, project: str | None = None) -> list[Experiment]:
        if project is not None:
            project = self._project_for(principal, project)
        elif principal.project is not None:
            project = principal.project
        with self.store.read() as unit:
            return unit.experiments.list(project)

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
        principal.require(Role.EDITOR)
        try:
            new_status = RunStatus(status)
        except ValueError:
            raise InvalidStatus(
                f"status must be one of {', '.join(s.value for s in RunStatus)}, got {status!r}"
            ) from None
        if end_time is not None and (isinstance(end_time, bool) or not isinstance(end_time, int)):
            raise InvalidInput(f"end_time must be milliseconds since the epoch, got {end_time!r}")
        with self.store.write(principal.actor) as unit:
            self._visible_run(unit, principal, run_id)
            when = None if new_status is RunStatus.RUNNING else (end_time or now_ms())
            unit.runs.set_status(run_id, new_status, when)
            return unit.runs.get(run_id)

    def log_params(self, principal: Principal, run_id: str, params: Mapping[str, object]) -> None:
        principal.require(Role.EDITOR)
        checked = check_values("param", params)
        with self.store.write(principal.actor) as unit:
            self._visible_run(unit, principal, run_id)
            unit.runs.log_params(run_id, checked)

    def set_tags(self, principal: Principal, run_id: str, tags: Mapping[str, object]) -> None:
        principal.require(Role.EDITOR)
        checked = check_values("tag", tags)
        with self.store.write(principal.actor) as unit:
            self._visible_run(unit, principal, run_id)
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
            self._visible_run(unit, principal, run_id)
            return unit.metrics.log(run_id, batch, batch_key)

    def metric_history(self, principal: Principal, run_id: str, key: str) -> list[Metric]:
        check_key("metric", key)
        with self.store.read() as unit:
            self._visible_run(unit, principal, run_id)
            return unit.metrics.history(run_id, key)

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
            self._visible_run(unit, principal, run_id)
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
            self._visible_run(unit, principal, run_id)
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
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[Run]:
        if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_RESULTS:
            raise InvalidInput(f"max_results must be an integer from 1 to {MAX_RESULTS}, got {max_results!r}")
        if not experiment_ids:
            raise InvalidInput("search needs at least one experiment")
        parsed, order = parse_filter(filter), parse_order_by(order_by)
        offset = decode_page_token(page_token)
        with self.store.read() as unit:
            for experiment_id in experiment_ids:
                self._visible_experiment(unit, principal, experiment_id)
            ids = unit.runs.search_ids(list(experiment_ids), parsed, order, max_results + 1, offset)
            found = unit.runs.get_many(ids[:max_results])
        next_token = encode_page_token(offset + max_results) if len(ids) > max_results else None
        return Page(items=found, next_page_token=next_token)
