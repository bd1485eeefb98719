"""The fluent API behind `import loopml as lm`: `lm.start_run(...)` as a `with` block.

with lm.start_run(experiment="bike-demand", params={"max_depth": 6}) as run:
    run.log_metric("rmse", 41.2, step=3)
lm.search_runs("bike-demand", filter="metrics.rmse < 45", order_by=["metrics.rmse"])
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from loopml.api.tracking import CREATE_RUN
from loopml.client.client import Client
from loopml.client.model_packages import LoggedModel
from loopml.client.models import Models
from loopml.domain import ArtifactRecord, Dataset, ModelVersion, Run, RunStatus
from loopml.errors import InvalidInput

if TYPE_CHECKING:
    from loopml.data import Contract

_lock = threading.Lock()
_default: Client | None = None
_config: dict[str, Any] = {}
_active = threading.local()


def set_tracking_uri(uri: str | None, token: str | None = None) -> None:
    """Use a server (`http://host:port`) or an embedded directory from now on (None: back to defaults)."""
    global _default
    with _lock:
        if _default is not None:
            _default.close()
        _default = None
        _config.clear()
        if uri is not None:
            _config["tracking_uri"] = uri
        if token is not None:
            _config["token"] = token


def get_client() -> Client:
    """The client the fluent functions use (created on first use from LOOPML_* settings)."""
    global _default
    with _lock:
        if _default is None:
            _default = Client(**_config)
        return _default


def _stack() -> list[ActiveRun]:
    if not hasattr(_active, "runs"):
        _active.runs = []
    return _active.runs  # type: ignore[no-any-return]


class ActiveRun:
    """A run being logged to. Ends FINISHED when its `with` block exits normally, FAILED on an exception,
    KILLED on Ctrl-C; every metric point is flushed before the run ends."""

    def __init__(self, client: Client, run: Run) -> None:
        self._client = client
        self.info = run
        self.id = run.id

    def log_metric(self, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        self._client.runs.log_metric(self.id, key, value, step, timestamp)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
        self._client.runs.log_metrics(self.id, metrics, step, timestamp)

    def log_param(self, key: str, value: object) -> None:
        self._client.runs.log_params(self.id, {key: value})

    def log_params(self, params: Mapping[str, object]) -> None:
        self._client.runs.log_params(self.id, params)

    def set_tag(self, key: str, value: object) -> None:
        self._client.runs.set_tags(self.id, {key: value})

    def set_tags(self, tags: Mapping[str, object]) -> None:
        self._client.runs.set_tags(self.id, tags)

    def log_dataset(self, data: Any, name: str, role: str = "training", source: str | None = None) -> Dataset:
        """Record a dataset by content hash, schema and row count (the data itself is not uploaded)."""
        return self._client.runs.log_dataset(self.id, data, name, role, source)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> ArtifactRecord:
        return self._client.runs.log_artifact(self.id, local_path, artifact_path)

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> list[ArtifactRecord]:
        return self._client.runs.log_artifacts(self.id, local_dir, artifact_path)

    def log_model(
        self,
        model: object,
        name: str,
        *,
        input_example: object = None,
        datasets: Mapping[str, Any] | None = None,
        register: bool = False,
        artifact_path: str | None = None,
        flavor: str | None = None,
        description: str | None = None,
        contract: Contract | str | os.PathLike[str] | None = None,
    ) -> ModelVersion | LoggedModel:
        """Save `model` as a verified package under this run; with `register=True`, as the next version of
        registered model `name` (returns the ModelVersion). `datasets` maps roles to data (fingerprinted);
        `contract` (a `Contract`, a YAML path or text) is checked on every serving request.

        >>> mv = run.log_model(model, name="bike-demand", input_example=X[:5], register=True)  # doctest: +SKIP
        """
        return self._client.models.log(
            self.id,
            model,
            name,
            input_example=input_example,
            datasets=datasets,
            register=register,
            artifact_path=artifact_path,
            flavor=flavor,
            description=description,
            contract=contract,
        )

    def refresh(self) -> Run:
        """The run as stored now (params, latest metrics, tags)."""
        self._client.metrics.flush()
        self.info = self._client.runs.get(self.id)
        return self.info

    def end(self, status: str | RunStatus = RunStatus.FINISHED) -> Run:
        stack = _stack()
        if self in stack:
            stack.remove(self)
        self.info = self._client.runs.end(self.id, status)
        return self.info

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(kind, KeyboardInterrupt):
            self.end(RunStatus.KILLED)
        else:
            self.end(RunStatus.FAILED)

    def __repr__(self) -> str:
        return f"<ActiveRun {self.info.name} {self.id}>"


def start_run(
    experiment: str | None = None,
    *,
    name: str | None = None,
    params: Mapping[str, object] | None = None,
    tags: Mapping[str, object] | None = None,
    project: str | None = None,
    parent: ActiveRun | str | None = None,
    capture_environment: bool = True,
) -> ActiveRun:
    """Start a run in `experiment` (created if needed; default "default"). Started inside another run's
    block, the new run is nested under it unless `parent` says otherwise. Records the git commit, entry
    point, Python and key package versions as `loopml.*` tags."""
    c = get_client()
    stack = _stack()
    if parent is None and stack:
        parent = stack[-1]
    parent_id = parent.id if isinstance(parent, ActiveRun) else parent
    if experiment is None:
        if parent_id is not None:
            experiment_id = c.runs.get(parent_id).experiment_id
        else:
            experiment_id = c.experiments.get_or_create("default", project).id
    else:
        experiment_id = c.experiments.get_or_create(experiment, project).id
    all_tags: dict[str, object] = {}
    if capture_environment:
        from loopml.client.environment import capture

        all_tags.update(capture())
    all_tags.update(tags or {})
    run = c.backend.call(
        CREATE_RUN, experiment_id=experiment_id, name=name, parent_run_id=parent_id, params=params, tags=all_tags
    )
    active = ActiveRun(c, run)
    stack.append(active)
    return active


def active_run() -> ActiveRun | None:
    stack = _stack()
    return stack[-1] if stack else None


def _require_active() -> ActiveRun:
    run = active_run()
    if run is None:
        raise InvalidInput("no active run: call this inside `with loopml.start_run(...):`")
    return run


def end_run(status: str | RunStatus = RunStatus.FINISHED) -> Run | None:
    run = active_run()
    return None if run is None else run.end(status)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    _require_active().log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int = 0) -> None:
    _require_active().log_metrics(metrics, step)


def log_param(key: str, value: object) -> None:
    _require_active().log_param(key, value)


def log_params(params: Mapping[str, object]) -> None:
    _require_active().log_params(params)


def set_tag(key: str, value: object) -> None:
    _require_active().set_tag(key, value)


def set_tags(tags: Mapping[str, object]) -> None:
    _require_active().set_tags(tags)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> ArtifactRecord:
    return _require_active().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> list[ArtifactRecord]:
    return _require_active().log_artifacts(local_dir, artifact_path)


def log_dataset(data: Any, name: str, role: str = "training", source: str | None = None) -> Dataset:
    return _require_active().log_dataset(data, name, role, source)


def get_run(run_id: str) -> Run:
    return get_client().runs.get(run_id)


def search_runs(
    experiments: str | int | Sequence[str | int],
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    project: str | None = None,
) -> list[Run]:
    """Runs of the experiment(s) matching `filter`, ordered by `order_by`, at most `max_results`.

    >>> best = search_runs("bike-demand", filter="metrics.rmse < 45", order_by=["metrics.rmse"])  # doctest: +SKIP
    """
    c = get_client()
    found: list[Run] = []
    for run in c.runs.iter_search(experiments, filter, order_by, project, page_size=min(max_results, 1000)):
        found.append(run)
        if len(found) >= max_results:
            break
    return found


class _DefaultModels:
    """`lm.models`: the model registry of the default client (`lm.get_client().models`)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(get_client().models, name)

    def __dir__(self) -> list[str]:
        return [n for n in dir(Models) if not n.startswith("_")]


models = _DefaultModels()


class _DefaultRetrain:
    """`lm.retrain`: retraining policies and loops of the default client (`lm.get_client().retrain`)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(get_client().retrain, name)

    def __dir__(self) -> list[str]:
        from loopml.client.retrain import Retrain

        return [n for n in dir(Retrain) if not n.startswith("_")]


retrain = _DefaultRetrain()
