"""The explicit client: `Client()` talks to the embedded store or to a server, with the same calls.

client = loopml.Client()                                   # embedded, under ./loopml-data
client = loopml.Client("http://127.0.0.1:8080", token=...)  # a loopml server
client.runs.search("bike-demand", filter="metrics.rmse < 45", order_by=["metrics.rmse"])
"""

from __future__ import annotations

import builtins
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopml.client.metric_buffer import MetricBuffer
from loopml.domain import (
    ArtifactRecord,
    AuditEvent,
    Dataset,
    Deployment,
    DeploymentRevision,
    Experiment,
    Metric,
    ModelVersion,
    Page,
    RegisteredModel,
    RolloutDecision,
    Run,
    RunStatus,
    Token,
)
from loopml.domain.monitoring import Alert, Monitor, MonitorWindow
from loopml.domain.validation import check_key
from loopml.errors import InvalidInput, InvalidMetric

if TYPE_CHECKING:
    import httpx

    from loopml.client.backend import Backend
    from loopml.client.model_packages import LoggedModel
    from loopml.data import Contract
    from loopml.registry import LoadedModel


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _backend_for(tracking_uri: str | None, token: str | None, home: str | Path | None) -> Backend:
    from loopml.settings import load_settings

    overrides: dict[str, Any] = {}
    if home is not None:
        overrides["home"] = Path(home)
    settings = load_settings(**overrides)
    uri = tracking_uri if tracking_uri is not None else settings.tracking_uri
    if uri and uri.startswith(("http://", "https://")):
        from loopml.client.http_backend import HttpBackend

        return HttpBackend(uri, token if token is not None else settings.token)
    if uri:
        if uri.startswith("file://"):
            uri = uri[len("file://") :]
        settings = load_settings(home=Path(uri))
    from loopml.client.local_backend import LocalBackend

    return LocalBackend.from_settings(settings)


def _cache_dir(home: str | Path | None) -> Path:
    if home is not None:
        return Path(home) / "cache"
    from loopml.settings import load_settings

    return load_settings().home.resolve() / "cache"


class Client:
    """Tracking, tokens and audit through one backend. `tracking_uri`: `http(s)://...` for a server, a
    directory (or unset: `LOOPML_TRACKING_URI`, else `LOOPML_HOME`, else ./loopml-data) for embedded."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        token: str | None = None,
        home: str | Path | None = None,
        backend: Backend | None = None,
        http_client: httpx.Client | None = None,
        metric_batch_size: int = 10_000,
        metric_flush_seconds: float = 1.0,
    ) -> None:
        if backend is None and http_client is not None:
            from loopml.client.http_backend import HttpBackend

            backend = HttpBackend(tracking_uri or str(http_client.base_url), token, client=http_client)
        self.backend: Backend = backend or _backend_for(tracking_uri, token, home)
        self.cache_dir = _cache_dir(home)
        """Where downloaded model packages are kept, by content digest."""
        self.metrics = MetricBuffer(self.backend.log_metrics, metric_batch_size, metric_flush_seconds)
        self.experiments = Experiments(self)
        self.runs = Runs(self)
        self.tokens = Tokens(self)
        self.audit = Audit(self)
        self.models = Models(self)
        self.deployments = Deployments(self)
        self.monitors = Monitors(self)
        self.feedback = FeedbackLabels(self)

    def close(self) -> None:
        """Flush pending metric points (raising DeliveryFailed if any were not stored), then disconnect."""
        try:
            self.metrics.close()
        finally:
            self.backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Experiments:
    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def list(self, project: str | None = None) -> list[Experiment]:
        return self._backend.list_experiments(project)

    def get(self, experiment_id: int) -> Experiment:
        return self._backend.get_experiment(experiment_id)

    def find(self, name: str, project: str | None = None) -> Experiment:
        return self._backend.find_experiment(name, project)

    def get_or_create(self, name: str, project: str | None = None) -> Experiment:
        return self._backend.get_or_create_experiment(name, project)


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
        return self._backend.create_run(experiment_id, name, parent_run_id, params, tags)

    def get(self, run_id: str) -> Run:
        return self._backend.get_run(run_id)

    def end(self, run_id: str, status: str | RunStatus = RunStatus.FINISHED) -> Run:
        """Flush the run's metric points, then set its final status."""
        self._client.metrics.flush()
        value = status.value if isinstance(status, RunStatus) else status
        return self._backend.end_run(run_id, value)

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
        return self._backend.metric_history(run_id, key)

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        self._backend.log_params(run_id, params)

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        self._backend.set_tags(run_id, tags)

    def log_dataset(
        self, run_id: str, data: Any, name: str, role: str = "training", source: str | None = None
    ) -> Dataset:
        from loopml.client.fingerprint import fingerprint

        return self._backend.log_dataset(run_id, fingerprint(data, name, role, source))

    def datasets(self, run_id: str) -> list[Dataset]:
        return self._backend.run_datasets(run_id)

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
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidInput(f"{str(root)!r} is not a directory")
        logged = []
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            relative = file.relative_to(root).as_posix()
            target = f"{artifact_path.rstrip('/')}/{relative}" if artifact_path else relative
            logged.append(self._backend.log_artifact(run_id, target, file))
        return logged

    def artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactRecord]:
        return self._backend.list_artifacts(run_id, prefix)

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
    ) -> Page[Run]:
        """One page of runs matching `filter`; pass `next_page_token` back for the next page."""
        self._client.metrics.flush()
        names = [experiments] if isinstance(experiments, str | int) else list(experiments)
        ids = [self._experiment_id(e, project, create=False) for e in names]
        return self._backend.search_runs(ids, filter, order_by, max_results, page_token)

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
            return self._backend.get_or_create_experiment(experiment, project).id
        return self._backend.find_experiment(experiment, project).id


class Tokens:
    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def create(self, name: str, role: str = "viewer", project: str | None = None) -> tuple[Token, str]:
        return self._backend.create_token(name, role, project)

    def list(self) -> list[Token]:
        return self._backend.list_tokens()

    def revoke(self, token_id: str) -> Token:
        return self._backend.revoke_token(token_id)


class Audit:
    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def events(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEvent]:
        return self._backend.audit_events(after_seq, limit)

    def verify(self) -> list[str]:
        """Problems in the audit hash chain; an empty list means no row was edited, inserted or deleted."""
        return self._backend.verify_audit()


class Models:
    """The model registry: registered models, their versions and aliases (`client.models`).

    Loading a model, `log_model` and downloads build on these calls; this class only records and
    resolves.

        client.models.create("bike-demand")
        version = client.models.create_version("bike-demand", run.id, "model", manifest.digest, "sklearn")
        client.models.set_alias("bike-demand", "champion", version.version, reason="beats v3 on rmse")
        client.models.resolve("models:/bike-demand@champion")
    """

    def __init__(self, client: Client) -> None:
        self._client = client
        self._backend = client.backend

    def create(
        self,
        name: str,
        project: str | None = None,
        *,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
        exist_ok: bool = False,
    ) -> RegisteredModel:
        """Register a model name (unique across projects); with `exist_ok`, return it if it exists."""
        return self._backend.create_model(name, project, description, tags, exist_ok)

    def get(self, name: str) -> RegisteredModel:
        return self._backend.get_model(name)

    def update(
        self, name: str, *, description: str | None = None, tags: Mapping[str, object] | None = None
    ) -> RegisteredModel:
        """Set the description and/or tags (merged: tags not named keep their value)."""
        return self._backend.update_model(name, description, tags)

    def search(
        self,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        """One page of models matching `filter` (`tags.<k>`, `attributes.name`, `attributes.created_at`,
        `attributes.updated_at`); pass `next_page_token` back for the next page."""
        return self._backend.search_models(filter, order_by, max_results, page_token)

    def create_version(
        self,
        name: str,
        run_id: str,
        artifact_path: str,
        manifest_digest: str,
        flavor: str,
        *,
        signature: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        """The next version of `name`, from the model package run `run_id` logged under `artifact_path`
        (its `loopml-model.json` must have sha256 `manifest_digest`)."""
        return self._backend.create_model_version(
            name, run_id, artifact_path, manifest_digest, flavor, signature, description, tags
        )

    def get_version(self, name: str, version: int) -> ModelVersion:
        return self._backend.get_model_version(name, version)

    def update_version(
        self,
        name: str,
        version: int,
        *,
        status: str | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        """Set the status (`READY`, `ARCHIVED`), description and/or tags (merged) of a version."""
        return self._backend.update_model_version(name, version, status, description, tags)

    def versions(
        self, name: str, filter: str | None = None, order_by: Sequence[str] | None = None
    ) -> list[ModelVersion]:
        """Every version of model `name` matching `filter`, newest first unless `order_by` says otherwise."""
        found: list[ModelVersion] = []
        token: str | None = None
        while True:
            page = self._backend.search_model_versions(filter, order_by, 1000, token, name)
            found += page.items
            if page.next_page_token is None:
                return found
            token = page.next_page_token

    def search_versions(
        self,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[ModelVersion]:
        """One page of versions of any model matching `filter` (`attributes.name`, `version`, `run_id`,
        `status`, `flavor`, `created_at`, `tags.<k>`, `metrics.<k>` as snapshotted at registration)."""
        return self._backend.search_model_versions(filter, order_by, max_results, page_token)

    def set_alias(self, name: str, alias: str, version: int, reason: str | None = None) -> ModelVersion:
        """Point `alias` (e.g. `champion`) at `version`, atomically; the move is audited with `reason`."""
        return self._backend.set_model_alias(name, alias, version, reason)

    def delete_alias(self, name: str, alias: str, reason: str | None = None) -> int:
        """Remove `alias`; returns the version it pointed at."""
        return self._backend.delete_model_alias(name, alias, reason)

    def resolve(self, uri: str, alias_or_version: str | int | None = None) -> ModelVersion:
        """The version `models:/name@alias`, `models:/name/3` or `models:/name@latest` names (the
        `models:/` prefix is optional; or pass a name and `alias_or_version`)."""
        return self._backend.resolve_model_version(uri, alias_or_version)

    def log(
        self,
        run_id: str,
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
        """Save `model` as a package under run `run_id` (`models/<name>`); with `register`, as the next
        version of `name`. The signature is inferred from `input_example` and the model's prediction; `contract`
        (a `Contract`, a YAML path or text) goes in the package and is checked on every serving request."""
        from loopml.client.model_packages import log_model

        return log_model(
            self._client,
            run_id,
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

    def register(self, source: LoggedModel | str, name: str, description: str | None = None) -> ModelVersion:
        """Register a package logged earlier (`LoggedModel`, or `runs:/<run_id>/models/<name>`) as the next
        version of `name`; its manifest's sha256 is what the version pins."""
        from loopml.client.model_packages import register

        return register(self._client, source, name, description)

    def download(self, reference: str, dest: str | Path | None = None) -> Path:
        """The verified package directory of `models:/name@alias` (or `/3`), cached by content; copied to
        `dest` if given."""
        from loopml.client.model_packages import download

        cached = download(self._client, self.resolve(reference), self._client.cache_dir / "models")
        if dest is None:
            return cached
        target = Path(dest)
        shutil.copytree(cached, target, dirs_exist_ok=True)
        return target

    def load(
        self,
        reference: str | Path,
        *,
        trust_pickle: bool = False,
        extra_columns: Literal["drop", "error"] = "drop",
    ) -> LoadedModel:
        """Load `models:/name@alias`, `models:/name/3`, `models:/name@latest` or a package directory; every
        file is verified against the registry's digest first. Pickle-based flavors need `trust_pickle`."""
        from loopml.client.model_packages import load

        return load(
            self._client,
            reference,
            self._client.cache_dir / "models",
            trust_pickle=trust_pickle,
            extra_columns=extra_columns,
        )

    def import_mlflow(
        self,
        source: str | Path,
        name: str | None = None,
        *,
        experiment: str = "mlflow-imports",
        trust_pickle: bool = False,
    ) -> ModelVersion | LoggedModel:
        """Convert an MLflow model directory (sklearn, xgboost or lightgbm flavor) into a loopml package and log
        it to a new run of `experiment`; registered as `name` when a name is given."""
        from loopml.client.model_packages import publish
        from loopml.registry import import_mlflow

        label = Path(str(source)).name
        with tempfile.TemporaryDirectory(prefix="loopml-mlflow-") as scratch:
            package = import_mlflow(source, Path(scratch) / "package", trust_pickle=trust_pickle)
            run = self._client.runs.create(experiment, f"import-{label}", tags={"loopml.source.mlflow": str(source)})
            try:
                prefix = f"models/{name or label}"
                logged = publish(self._client, run.id, package, name or label, prefix, register=name is not None)
            except BaseException:
                self._client.runs.end(run.id, "FAILED")
                raise
            self._client.runs.end(run.id)
        return logged

    def list(self, filter: str | None = None, order_by: Sequence[str] | None = None) -> list[RegisteredModel]:
        """Every model matching `filter` (all pages)."""
        found: list[RegisteredModel] = []
        token: str | None = None
        while True:
            page = self.search(filter, order_by, 1000, token)
            found += page.items
            if page.next_page_token is None:
                return found
            token = page.next_page_token


class Deployments:
    """Deployments and progressive delivery (`client.deployments`; `loopml deploy` on the command line).

    client.deployments.deploy("bike-demand", "bike-demand@champion")                 # direct
    client.deployments.deploy("bike-demand", "bike-demand@challenger", strategy="canary",
                              canary_steps=(10, 50, 100), analysis_seconds=300)
    client.deployments.rollback("bike-demand", reason="p99 too high")
    """

    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def deploy(
        self,
        name: str,
        model: str,
        strategy: str = "direct",
        canary_steps: Sequence[int] = (10, 50, 100),
        analysis_seconds: int = 300,
        thresholds: Mapping[str, float] | None = None,
        sticky_key: str | None = None,
        ab_weight: int | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Deploy the version `model` names (`name@alias`, `name/3`) to deployment `name` with `strategy`
        (`direct`, `canary`, `shadow` or `ab`); the reference is resolved to a version number now."""
        return self._backend.deploy(
            name, model, strategy, canary_steps, analysis_seconds, thresholds, sticky_key, ab_weight, reason
        )

    def list(self) -> list[Deployment]:
        return self._backend.list_deployments()

    def status(self, name: str) -> Deployment:
        return self._backend.get_deployment(name)

    def rollback(self, name: str, reason: str | None = None) -> Deployment:
        return self._backend.rollback_deployment(name, reason)

    def promote(self, name: str, reason: str | None = None) -> Deployment:
        return self._backend.promote_deployment(name, reason)

    def history(self, name: str, limit: int = 100) -> builtins.list[DeploymentRevision]:
        """The revisions of deployment `name`, newest first."""
        return self._backend.deployment_history(name, limit)

    def decisions(self, name: str, limit: int = 100) -> builtins.list[RolloutDecision]:
        """The rollout controller's decisions about `name`, oldest first, with their numbers."""
        return self._backend.deployment_decisions(name, limit)

    def shadow_comparison(self, name: str, window_seconds: int = 3600, tolerance: float = 1e-6) -> dict[str, Any]:
        """Agreement rate, prediction differences and latencies of the shadow version against the live one."""
        return self._backend.shadow_comparison(name, window_seconds, tolerance)


class Monitors:
    """Monitors of deployments over the request log (see docs/monitoring.md); `loopml monitor ...` mirrors these.

    Needs a loopml server, or the embedded store that the serving replicas publish their request log to.
    """

    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def create(
        self,
        name: str,
        deployment: str,
        window: str | int = "1d",
        label_delay: str | int = "0s",
        consecutive: int = 3,
        *,
        model: str | None = None,
        version: int | None = None,
        thresholds: Mapping[str, float] | None = None,
        webhook: str | None = None,
        kinds: Sequence[str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Monitor:
        """A monitor of `deployment`: `window` `1d` (by time) or `1000` (by count of requests); an alert opens
        after `consecutive` breaching windows and is POSTed to `webhook`."""
        return self._backend.create_monitor(
            name,
            deployment,
            str(window),
            str(label_delay),
            consecutive,
            model,
            version,
            thresholds,
            webhook,
            kinds,
            options,
        )

    def list(self) -> builtins.list[Monitor]:
        return self._backend.list_monitors()

    def get(self, name: str) -> Monitor:
        return self._backend.get_monitor(name)

    def run(self, name: str, now: int | None = None) -> dict[str, Any]:
        """Compute the monitor's new complete windows and pending performance, and its alerts."""
        return self._backend.run_monitor(name, now)

    def windows(self, name: str, limit: int | None = None) -> builtins.list[MonitorWindow]:
        return self._backend.monitor_windows(name, limit)

    def report(self, name: str, html: str | Path | None = None) -> str:
        """The self-contained HTML report; written to `html` when given."""
        page = self._backend.monitor_report(name)
        if html is not None:
            Path(html).write_text(page, encoding="utf-8")
        return page

    def alerts(self, monitor: str | None = None, state: str | None = None) -> builtins.list[Alert]:
        return self._backend.list_alerts(monitor, state)

    def set_reference_profile(self, model: str, version: int, profile: Any) -> None:
        """Store the reference profile (a `loopml.data.Profile` or its dict) of a registered model version."""
        data = profile.to_dict() if hasattr(profile, "to_dict") else dict(profile)
        self._backend.set_reference_profile(model, version, data)

    def get_reference_profile(self, model: str, version: int) -> Any:
        from loopml.data import Profile

        return Profile.from_dict(self._backend.get_reference_profile(model, version))


class FeedbackLabels:
    """Ground truth that arrives after the prediction, joined to logged requests by request id or business key."""

    def __init__(self, client: Client) -> None:
        self._backend = client.backend

    def log(
        self, label: Any, *, request_id: str | None = None, key: str | None = None, time_ms: int | None = None
    ) -> int:
        """One label, for the request `request_id` (or the row whose key column holds `key`)."""
        return self.log_many([{"request_id": request_id, "key": key, "label": label, "time_ms": time_ms}])

    def log_many(self, items: Sequence[Mapping[str, Any]]) -> int:
        """Up to 10,000 labels: dicts with `label` and one of `request_id` or `key` (and `time_ms`, optional)."""
        cleaned = [{k: v for k, v in item.items() if v is not None or k == "label"} for item in items]
        return self._backend.record_feedback(cleaned)
