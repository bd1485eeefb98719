"""Run a serving replica under uvicorn: `serve(config)`, and `app_from_env` for worker processes.

With `workers > 1` uvicorn starts each worker from an import string, so the configuration travels as JSON in
the `LOOPML_SERVE_CONFIG` environment variable and `loopml.serving.runner:app_from_env` rebuilds the app in
each worker. Each worker is a full replica: it loads the models, polls the specs and exposes its own
`/metrics` (scrape each worker, or run one worker per container as Kubernetes does).
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopml.errors import InvalidInput
from loopml.serving.app import ServingApp, create_serving_app
from loopml.serving.batching import BatchingConfig
from loopml.serving.features import FeatureFetcher
from loopml.serving.host import ModelHost
from loopml.serving.specs import DeploymentSpec, DirectorySpecSource, ServingVersion, SpecSource, StaticSpecSource

__all__ = ["CONFIG_ENV", "ServeConfig", "app_from_env", "build_app", "serve", "source_for"]

CONFIG_ENV = "LOOPML_SERVE_CONFIG"


@dataclass(frozen=True)
class ServeConfig:
    """Everything a replica needs, JSON-serialisable: where its specs come from and how it batches.

    Exactly one source: `model_dir` (one package served as deployment `name`, default the directory's name),
    `deployments_file` (a `deployments.json`, polled every `poll_seconds`) or `deployments` (comma-separated
    deployment names read from the metadata store of `LOOPML_DATABASE_URL`, packages fetched from
    `LOOPML_ARTIFACT_ROOT`, polled every `poll_seconds`). With `request_log_dir`, every answer is logged there,
    in segments sealed and published once they are `seal_seconds` old (`LOOPML_REQUEST_LOG_SEAL_SECONDS`).
    """

    model_dir: str | None = None
    name: str | None = None
    deployments_file: str | None = None
    poll_seconds: float = 2.0
    max_batch_size: int = 32
    max_wait_ms: float = 2.0
    batching: bool = True
    max_body_bytes: int = 1_048_576
    trust_pickle: bool = False
    model_threads: int | None = 1
    deployments: str | None = None
    request_log_dir: str | None = None
    seal_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not self.seal_seconds > 0:
            raise InvalidInput(f"--seal-seconds must be positive (got {self.seal_seconds})")
        if sum(x is not None for x in (self.model_dir, self.deployments_file, self.deployments)) != 1:
            raise InvalidInput(
                "serve one model directory (--model-dir), a deployments file (--deployments-file) or deployments "
                "from the metadata store (--deployments NAME[,NAME])"
            )
        if self.name is not None and self.model_dir is None:
            raise InvalidInput("--name names the deployment of --model-dir; a deployments file names its own")
        BatchingConfig(self.max_batch_size, self.max_wait_ms, self.batching)  # checks the values

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        return cls(**json.loads(text))


def source_for(config: ServeConfig) -> SpecSource:
    """The spec source `config` names."""
    if config.model_dir is not None:
        directory = Path(config.model_dir).resolve()
        if not directory.is_dir():
            raise InvalidInput(f"{directory} is not a directory (a model package from loopml.registry.save_model)")
        name = config.name or directory.name
        return StaticSpecSource([DeploymentSpec(name, (ServingVersion(name, 1, directory),))])
    if config.deployments is not None:
        from loopml.serving.store_source import StoreSpecSource
        from loopml.settings import load_settings

        settings = load_settings()
        names = [n.strip() for n in config.deployments.split(",") if n.strip()]
        store_source = StoreSpecSource.open(
            settings.resolved_database_url(),
            settings.resolved_artifact_root(),
            names,
            settings.home.resolve() / "cache" / "serving",
            settings.s3_endpoint_url,
        )
        store_source.load()  # fail now on a store that cannot be read or a package that does not verify
        return store_source
    assert config.deployments_file is not None
    path = Path(config.deployments_file).resolve()
    source = DirectorySpecSource(path.parent, path.name)
    source.load()  # fail now, in the parent process, with the file's own error
    return source


class _PublishToStoreAndKeep:
    """Registers a sealed segment in the metadata store (uploaded to the artifact store: what monitors read),
    then keeps it under `<request log dir>/sealed/` (what the rollout controller reads). Both steps are
    idempotent, so a retry after a failure in the second step does no harm."""

    def __init__(self, store: Any, artifacts: Any, directory: str) -> None:
        from loopml.monitoring import StoreSegmentPublisher
        from loopml.serving.segments import LocalSegmentPublisher

        self._store = StoreSegmentPublisher(store, artifacts, actor="serving-replica")
        self._local = LocalSegmentPublisher(directory)

    def publish(self, path: Path, meta: Any) -> None:
        self._store.publish(path, meta)
        self._local.publish(path, meta)


def build_app(config: ServeConfig, source: SpecSource | None = None, *, own_process: bool = False) -> ServingApp:
    """The serving app for `config`; `own_process` when the app is all its process serves (then the host
    tunes the garbage collector for serving, see `ModelHost`)."""
    source = source or source_for(config)
    host = ModelHost(
        source,
        poll_seconds=config.poll_seconds,
        trust_pickle=config.trust_pickle,
        model_threads=config.model_threads,
        tune_gc=own_process,
        batching=BatchingConfig(config.max_batch_size, config.max_wait_ms, config.batching),
    )
    request_log = None
    if config.request_log_dir is not None:
        from loopml.serving.request_log import RequestLog
        from loopml.serving.store_source import StoreSpecSource

        publisher = None
        if isinstance(source, StoreSpecSource):
            publisher = _PublishToStoreAndKeep(source.store, source.artifacts, config.request_log_dir)
        # sealed at interpreter exit
        request_log = RequestLog(config.request_log_dir, seal_seconds=config.seal_seconds, publisher=publisher)
    features = FeatureFetcher(lambda: _feature_store(source))
    return create_serving_app(host, request_log=request_log, max_body_bytes=config.max_body_bytes, features=features)


def _feature_store(source: SpecSource) -> Any:
    """The feature store a replica reads online features from (opened at the first request of a deployment
    that names a feature service): the spec source's metadata store, or the one of the settings; the online
    store of `LOOPML_ONLINE_STORE`. It reads no offline source; on-demand views run here, beside the model."""
    from loopml.artifacts import open_artifact_store
    from loopml.features import FeatureStore, open_online_store
    from loopml.serving.store_source import StoreSpecSource
    from loopml.settings import load_settings
    from loopml.store import MetadataStore

    settings = load_settings()
    if isinstance(source, StoreSpecSource):
        store, artifacts = source.store, source.artifacts
    else:
        store = MetadataStore.open(settings.resolved_database_url(), upgrade=False)
        artifacts = open_artifact_store(settings.resolved_artifact_root(), settings.s3_endpoint_url)
    home = settings.home
    return FeatureStore(
        store,
        artifacts,
        lambda: open_online_store(settings.online_store, home),
        (home / "cache" / "features").resolve(),
        settings.default_project,
        source_dirs=(),
    )


def app_from_env() -> ServingApp:
    """The app of one uvicorn worker, from the JSON config in `LOOPML_SERVE_CONFIG` (a uvicorn factory)."""
    text = os.environ.get(CONFIG_ENV)
    if not text:
        raise InvalidInput(f"{CONFIG_ENV} is not set: start workers through loopml.serving.runner.serve")
    return build_app(ServeConfig.from_json(text), own_process=True)


def serve(
    config: ServeConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 9000,
    workers: int = 1,
    log_level: str = "info",
    source: SpecSource | None = None,
) -> None:
    """Serve until interrupted. `source` overrides the config's source (single worker only: it cannot travel
    to worker processes)."""
    import uvicorn

    if workers < 1:
        raise InvalidInput("workers must be at least 1")
    if workers == 1:
        app = build_app(config, source, own_process=True)
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="on")
        return
    if source is not None:
        raise InvalidInput("a spec source object cannot be shared with worker processes; pass it in the config")
    source_for(config)  # check the source once, before starting workers
    os.environ[CONFIG_ENV] = config.to_json()
    uvicorn.run(
        "loopml.serving.runner:app_from_env",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="on",
    )
