"""Runs: create, log metrics, params, tags, datasets and artifacts, end, search (`client.runs`)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.api import tracking as ops
from loopml.api.tracking import ViewType
from loopml.client.experiments import _deleted, find_experiment
from loopml.client.metric_buffer import with_retries
from loopml.domain import ArtifactRecord, Dataset, Metric, MetricSeries, Page, Run, RunStatus
from loopml.domain.validation import check_key
from loopml.errors import DeliveryFailed, InvalidInput, InvalidMetric

if TYPE_CHECKING:
    from loopml.client.client import Client


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Runs:
    def __init__(self, client: Client) -> None:
        self._client = client
        self._backend = client.backend
        self._checked_keys: set[str] = set()
        self._pending = client.metrics.pending
        self._batch_size = client.metrics.batch_size

    def create(
        self,
        experiment: str | int,
        name: str | None = None,
        *,
        project: str | None = None,
        parent_run_id: str | None = None,
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> Run:
        experiment_id = self._experiment_id(experiment, project, create=True)
        return self._backend.call(
            ops.CREATE_RUN,
            experiment_id=experiment_id,
            name=name,
            parent_run_id=parent_run_id,
            params=params,
            tags=tags,
        )

    def get(self, run_id: str) -> Run:
        return self._backend.call(ops.GET_RUN, run_id=run_id)

    def end(self, run_id: str, status: str | RunStatus = RunStatus.FINISHED) -> Run:
        """Flush the metric points, then set the run's final status: `FAILED` if points of this run were not
        stored. A `DeliveryFailed` of the flush (of this run or another of the client) is raised after."""
        try:
            self._client.metrics.flush()
        except DeliveryFailed as lost:
            final = RunStatus.FAILED if run_id in lost.run_ids or not lost.run_ids else status
            try:
                self._set_status(run_id, final)
            except Exception as exc:
                raise DeliveryFailed(
                    f"{lost.message}; run {run_id} could not be ended either: {type(exc).__name__}: {exc}",
                    lost.run_ids,
                ) from exc
            raise
        return self._set_status(run_id, status)

    def _set_status(self, run_id: str, status: str | RunStatus) -> Run:
        """Set the run's status, retrying passing failures (server unreachable, reset, timeout) for up to
        the client's `metric_retry_seconds`: setting a status twice is harmless."""
        value = status.value if isinstance(status, RunStatus) else status
        return with_retries(
            lambda: self._backend.call(ops.END_RUN, run_id=run_id, status=value), self._client.metrics.retry_seconds
        )

    def log_metric(self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        """Queue one point (sent in the background; `flush()` or `end()` waits for delivery).

        The SDK's hot path: a few type checks and a deque append, about a microsecond."""
        if key not in self._checked_keys:
            check_key("metric", key)
            self._checked_keys.add(key)
        if value.__class__ is not float:
            if isinstance(value, bool | str | bytes):
                raise InvalidMetric(f"metric {key!r} value must be a number, got {value!r}")
            try:
                value = float(value)  # int, numpy scalars, Decimal
            except (TypeError, ValueError):
                raise InvalidMetric(f"metric {key!r} value must be a number, got {value!r}") from None
        if step.__class__ is not int:
            if isinstance(step, bool) or not isinstance(step, int):
                raise InvalidMetric(f"metric {key!r} step must be an integer, got {step!r}")
            step = int(step)
        pending = self._pending
        pending.append((run_id, key, value, step, timestamp or time.time_ns() // 1_000_000))
        if len(pending) >= self._batch_size:
            self._client.metrics.kick()

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        at = timestamp or now_ms()
        for key, value in metrics.items():
            self.log_metric(run_id, key, value, step, at)

    def flush(self) -> None:
        self._client.metrics.flush()

    def history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of metric `key`, by step (pending points are flushed first)."""
        self._client.metrics.flush()
        return self._backend.call(ops.METRIC_HISTORY, run_id=run_id, key=key)

    def series(self, run_id: str, key: str) -> MetricSeries:
        """The whole history of metric `key` as columns (`steps`, `timestamps`, `values`: arrays that numpy
        reads without a copy), sent as one binary body: the fast way to read a long history back."""
        self._client.metrics.flush()
        return self._backend.call(ops.METRIC_SERIES, run_id=run_id, key=key)

    def delete(self, run_id: str) -> Run:
        """Delete a run (soft, as MLflow's lifecycle_stage): searches leave it out unless asked with
        `view_type`, it takes no more data; `restore` undoes it. Returns the run, with `deleted_at` set."""
        return self._backend.call(ops.DELETE_RUN, run_id=run_id)

    def restore(self, run_id: str) -> Run:
        return self._backend.call(ops.RESTORE_RUN, run_id=run_id)

    def delete_tag(self, run_id: str, key: str) -> Run:
        """Remove tag `key` of a run (`TagNotFound` if it has none)."""
        return self._backend.call(ops.DELETE_RUN_TAG, run_id=run_id, key=key)

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        self._backend.call(ops.LOG_PARAMS, run_id=run_id, params=params)

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        self._backend.call(ops.SET_TAGS, run_id=run_id, tags=tags)

    def log_dataset(
        self, run_id: str, data: Any, name: str, role: str = "training", source: str | None = None
    ) -> Dataset:
        from loopml.data import fingerprint

        return self._backend.call(ops.LOG_DATASET, run_id=run_id, data=fingerprint(data, name, role, source))

    def datasets(self, run_id: str) -> list[Dataset]:
        return self._backend.call(ops.RUN_DATASETS, run_id=run_id)

    def log_artifact(self, run_id: str, local_path: str | Path, artifact_path: str | None = None) -> ArtifactRecord:
        """Upload a file; stored under `artifact_path` (default: the file's name)."""
        from loopml.artifacts import sanitize_path

        local = Path(local_path)
        if not local.is_file():
            raise InvalidInput(f"{str(local)!r} is not a file (use log_artifacts for a directory)")
        return self._backend.log_artifact(run_id, sanitize_path(artifact_path or local.name), local)

    def log_artifacts(
        self, run_id: str, local_dir: str | Path, artifact_path: str | None = None
    ) -> list[ArtifactRecord]:
        """Upload every file under `local_dir`, keeping its tree (below `artifact_path` when given).

        Every name is checked before anything is uploaded. A symlink to a file inside `local_dir` is
        uploaded as that file's content; a symlink whose target is outside `local_dir` (or missing) is
        refused; a symlinked directory inside `local_dir` is not entered (its files are uploaded under
        their own path).
        """
        from loopml.artifacts import sanitize_path

        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidInput(f"{str(root)!r} is not a directory")
        planned: dict[str, Path] = {}
        for file in _files_inside(root):
            relative = file.relative_to(root).as_posix()
            target = sanitize_path(f"{artifact_path.rstrip('/')}/{relative}" if artifact_path else relative)
            if target in planned:
                raise InvalidInput(
                    f"{str(planned[target])!r} and {str(file)!r} would both be stored as {target!r} "
                    "(artifact names are percent-decoded and NFC-normalised); rename one of them"
                )
            planned[target] = file
        return [self._backend.log_artifact(run_id, target, planned[target]) for target in sorted(planned)]

    def artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactRecord]:
        return self._backend.call(ops.LIST_ARTIFACTS, run_id=run_id, prefix=prefix)

    def download_artifact(self, run_id: str, path: str, dest_dir: str | Path = ".") -> Path:
        """Download one artifact into `dest_dir` (verified against its sha256); returns the local path."""
        from loopml.artifacts import sanitize_path

        clean = sanitize_path(path)
        return self._backend.download_artifact(run_id, clean, Path(dest_dir) / clean)

    def search(
        self,
        experiments: str | int | Sequence[str | int],
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        project: str | None = None,
        view_type: ViewType = "active_only",
    ) -> Page[Run]:
        """One page of runs matching `filter`; pass `next_page_token` back for the next page. Deleted runs
        are left out unless `view_type` is "deleted_only" or "all" (MLflow's `ViewType`)."""
        deleted = _deleted(view_type)
        self._client.metrics.flush()
        names = [experiments] if isinstance(experiments, str | int) else list(experiments)
        ids = [self._experiment_id(e, project, create=False) for e in names]
        return self._backend.call(
            ops.SEARCH_RUNS,
            experiment_ids=ids,
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            deleted=deleted,
        )

    def iter_search(
        self,
        experiments: str | int | Sequence[str | int],
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        project: str | None = None,
        page_size: int = 1000,
    ) -> Iterator[Run]:
        token: str | None = None
        while True:
            page = self.search(experiments, filter, order_by, page_size, token, project)
            yield from page.items
            if page.next_page_token is None:
                return
            token = page.next_page_token

    def list(self, experiment: str | int, max_results: int = 1000, project: str | None = None) -> list[Run]:
        return self.search(experiment, max_results=max_results, project=project).items

    def _experiment_id(self, experiment: str | int, project: str | None, create: bool) -> int:
        if isinstance(experiment, int) and not isinstance(experiment, bool):
            return experiment
        if not isinstance(experiment, str):
            raise InvalidInput(f"experiment must be a name or an id, got {experiment!r}")
        if create:
            return self._backend.call(ops.GET_OR_CREATE_EXPERIMENT, name=experiment, project=project).id
        return find_experiment(self._backend, experiment, project).id


def _files_inside(root: Path) -> Iterator[Path]:
    """The files under `root`, without following a symlink out of it (refused with `InvalidInput`)."""
    real_root = root.resolve()
    for directory, subdirectories, names in os.walk(root, followlinks=False):
        for name in subdirectories:
            if (entry := Path(directory, name)).is_symlink():
                _check_link(entry, root, real_root)
        for name in names:
            entry = Path(directory, name)
            if entry.is_symlink():
                _check_link(entry, root, real_root)
            if entry.is_file():
                yield entry


def _check_link(link: Path, root: Path, real_root: Path) -> None:
    target = link.resolve()
    if not target.is_relative_to(real_root) or not target.exists():
        raise InvalidInput(
            f"{str(link)!r} is a symlink to {str(target)!r}, which is outside {str(root)!r} or missing: "
            "log_artifacts does not follow links out of the directory; copy the file in, or log it with "
            "log_artifact"
        )
