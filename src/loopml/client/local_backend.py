"""The embedded backend: the services in this process, on the store under LOOPML_HOME. No token needed."""

from __future__ import annotations

import getpass
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from loopml.api import Operation
from loopml.artifacts import ArtifactStore, open_artifact_store
from loopml.client.downloads import write_verified
from loopml.domain import ArtifactRecord, MetricColumns, Principal, Role
from loopml.governance import GovernanceService
from loopml.registry import RegistryService
from loopml.settings import Settings
from loopml.store import MetadataStore
from loopml.tracking import TrackingService

if TYPE_CHECKING:
    from loopml.deploy import DeployService
    from loopml.evaluation import EvaluationService
    from loopml.features import FeatureStore
    from loopml.gates import GateService
    from loopml.monitoring import MonitoringService
    from loopml.pipelines import PipelineService, RunLauncher, ScheduleService
    from loopml.retraining import RetrainService


R = TypeVar("R")

_SERVICES = {
    "tracking": "tracking",
    "registry": "registry",
    "governance": "governance",
    "deploy": "deployments",
    "monitoring": "monitoring",
    "retrain": "retrain",
    "evaluations": "evaluations",
    "gates": "gates",
    "pipelines": "pipelines",
    "schedules": "schedules",
    "launcher": "launcher",
    "features": "features",
}
"""The attribute of `LocalBackend` that holds each service the table names."""


def _home_beside(artifacts: ArtifactStore) -> Path:
    """Without a home given: beside a local artifact store (`<home>/artifacts`), else the settings' home."""
    root = artifacts.root.removeprefix("file://")
    if "://" not in root:
        return Path(root).parent
    from loopml.settings import load_settings

    return load_settings().home


def _local_actor() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"local:uid{os.getuid()}"


class LocalBackend:
    def __init__(
        self,
        store: MetadataStore,
        artifacts: ArtifactStore,
        default_project: str = "default",
        request_log_dir: Path | None = None,
        settings: Settings | None = None,
        home: Path | None = None,
        online_store: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.home = home
        self.online_store_setting = online_store
        self.request_log_dir = request_log_dir
        self.artifacts = artifacts
        self.tracking = TrackingService(store, artifacts, default_project)
        self.governance = GovernanceService(store)
        self.registry = RegistryService(store, default_project)
        self.principal = Principal(actor=_local_actor(), role=Role.ADMIN, project=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        store = MetadataStore.open(settings.resolved_database_url())
        artifacts = open_artifact_store(settings.resolved_artifact_root(), settings.s3_endpoint_url)
        artifacts.sweep_temp()  # uploads cut off by a crash of an earlier process
        return cls(
            store,
            artifacts,
            settings.default_project,
            settings.resolved_request_log_dir(),
            settings,
            settings.home,
            settings.online_store,
        )

    def call(self, op: Operation[R], /, **arguments: Any) -> R:
        """The operation's service method, called in this process with the local principal (a global admin)."""
        if op.backend_method is not None:
            raise TypeError(f"{op.name} is sent with LocalBackend.{op.backend_method}, not call")
        service = getattr(self, _SERVICES[op.service])
        result = getattr(service, op.method)(self.principal, **arguments)
        return op.adapt(result) if op.adapt is not None else cast(R, result)

    def log_metrics(self, run_id: str, batch: MetricColumns, batch_key: str | None = None) -> int:
        return self.tracking.log_metrics(self.principal, run_id, batch, batch_key)

    def log_artifact(self, run_id: str, path: str, local_file: Path) -> ArtifactRecord:
        with open(local_file, "rb") as stream:
            return self.tracking.log_artifact(self.principal, run_id, path, iter(lambda: stream.read(1 << 20), b""))

    def download_artifact(self, run_id: str, path: str, dest: Path) -> Path:
        record, chunks = self.tracking.open_artifact(self.principal, run_id, path)
        return write_verified(chunks, record.digest, dest)

    # -- pipelines ---------------------------------------------------------------------------------

    @cached_property
    def pipelines(self) -> PipelineService:
        from loopml.pipelines import PipelineService

        return PipelineService(self.store, self.artifacts, self.tracking.default_project)

    @cached_property
    def schedules(self) -> ScheduleService:
        from loopml.pipelines import ScheduleService

        return ScheduleService(self.store, self.tracking.default_project)

    @cached_property
    def retrain(self) -> RetrainService:
        from loopml.retraining import RetrainService

        return RetrainService(self.store, self.registry, self.tracking.default_project)

    @cached_property
    def launcher(self) -> RunLauncher:
        """Runs submitted by reference, in child processes of this one. The embedded client runs your code as you:
        any file or module, no roots (the server applies LOOPML_PIPELINE_ROOTS / _MODULES to remote callers)."""
        from loopml.pipelines import RunLauncher

        settings = self.settings or Settings()
        return RunLauncher(
            self.pipelines,
            None,
            workers=settings.pipeline_workers,
            heartbeat_seconds=settings.pipeline_heartbeat_seconds,
        )

    # -- deployments -------------------------------------------------------------------------------

    @cached_property
    def deployments(self) -> DeployService:
        from loopml.deploy import DeployService  # reads the request log with pyarrow: imported on first use

        return DeployService(self.store, self.registry, self.request_log_dir)

    @cached_property
    def monitoring(self) -> MonitoringService:
        from loopml.monitoring import MonitoringService

        return MonitoringService(self.store, self.artifacts, self.registry, request_log=self.request_log_dir)

    # -- evaluations and gates (records only: scoring runs in the client, where the data is) ----------

    @cached_property
    def evaluations(self) -> EvaluationService:
        from loopml.evaluation import EvaluationService

        return EvaluationService(self.store, self.registry)

    @cached_property
    def gates(self) -> GateService:
        from loopml.gates import GateService

        return GateService(self.store, self.evaluations)

    def close(self) -> None:
        if "launcher" in self.__dict__:  # runs submitted from here go on in their own processes
            self.launcher.close()
        if "features" in self.__dict__:
            self.features.close()
        self.store.close()

    @cached_property
    def features(self) -> FeatureStore:
        """The feature store on these stores; sources are read where this process runs (the caller's files)."""
        from loopml.features import FeatureStore, open_online_store

        home = self.home or _home_beside(self.artifacts)
        setting = self.online_store_setting
        return FeatureStore(
            self.store,
            self.artifacts,
            lambda: open_online_store(setting, home),
            (home / "cache" / "features").resolve(),
            self.tracking.default_project,
        )
