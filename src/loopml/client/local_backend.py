"""The embedded backend: the services in this process, on the store under LOOPML_HOME. No token needed."""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.artifacts import ArtifactStore, open_artifact_store
from loopml.client.downloads import write_verified
from loopml.domain import (
    ArtifactRecord,
    AuditEvent,
    Dataset,
    DatasetInput,
    Deployment,
    DeploymentRevision,
    Experiment,
    Metric,
    MetricColumns,
    ModelVersion,
    Page,
    Principal,
    RegisteredModel,
    Role,
    RolloutDecision,
    Run,
    Token,
)
from loopml.domain.monitoring import Alert, Monitor, MonitorWindow
from loopml.governance import GovernanceService
from loopml.registry import RegistryService
from loopml.settings import Settings
from loopml.store import MetadataStore
from loopml.tracking import TrackingService

if TYPE_CHECKING:
    from loopml.deploy import DeployService
    from loopml.monitoring import MonitoringService
    from loopml.pipelines import PipelineService, ScheduleService


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
    ) -> None:
        self.store = store
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
        return cls(store, artifacts, settings.default_project, settings.resolved_request_log_dir())

    def get_or_create_experiment(self, name: str, project: str | None = None) -> Experiment:
        return self.tracking.get_or_create_experiment(self.principal, name, project)

    def get_experiment(self, experiment_id: int) -> Experiment:
        return self.tracking.get_experiment(self.principal, experiment_id)

    def find_experiment(self, name: str, project: str | None = None) -> Experiment:
        return self.tracking.find_experiment(self.principal, name, project)

    def list_experiments(self, project: str | None = None) -> list[Experiment]:
        return self.tracking.list_experiments(self.principal, project)

    def create_run(
        self,
        experiment_id: int,
        name: str | None = None,
        parent_run_id: str | None = None,
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
        start_time: int | None = None,
    ) -> Run:
        return self.tracking.create_run(self.principal, experiment_id, name, parent_run_id, params, tags, start_time)

    def get_run(self, run_id: str) -> Run:
        return self.tracking.get_run(self.principal, run_id)

    def end_run(self, run_id: str, status: str, end_time: int | None = None) -> Run:
        return self.tracking.end_run(self.principal, run_id, status, end_time)

    def log_params(self, run_id: str, params: Mapping[str, object]) -> None:
        self.tracking.log_params(self.principal, run_id, params)

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        self.tracking.set_tags(self.principal, run_id, tags)

    def log_metrics(self, run_id: str, batch: MetricColumns, batch_key: str | None = None) -> int:
        return self.tracking.log_metrics(self.principal, run_id, batch, batch_key)

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.tracking.metric_history(self.principal, run_id, key)

    def log_dataset(self, run_id: str, data: DatasetInput) -> Dataset:
        return self.tracking.log_dataset(self.principal, run_id, data)

    def run_datasets(self, run_id: str) -> list[Dataset]:
        return self.tracking.run_datasets(self.principal, run_id)

    def log_artifact(self, run_id: str, path: str, local_file: Path) -> ArtifactRecord:
        with open(local_file, "rb") as stream:
            return self.tracking.log_artifact(self.principal, run_id, path, iter(lambda: stream.read(1 << 20), b""))

    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactRecord]:
        return self.tracking.list_artifacts(self.principal, run_id, prefix)

    def download_artifact(self, run_id: str, path: str, dest: Path) -> Path:
        record, chunks = self.tracking.open_artifact(self.principal, run_id, path)
        return write_verified(chunks, record.digest, dest)

    def search_runs(
        self,
        experiment_ids: Sequence[int],
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[Run]:
        return self.tracking.search_runs(self.principal, experiment_ids, filter, order_by, max_results, page_token)

    def create_token(self, name: str, role: str, project: str | None = None) -> tuple[Token, str]:
        return self.governance.create_token(self.principal, name, role, project)

    def list_tokens(self) -> list[Token]:
        return self.governance.list_tokens(self.principal)

    def revoke_token(self, token_id: str) -> Token:
        return self.governance.revoke_token(self.principal, token_id)

    def audit_events(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEvent]:
        return self.governance.audit_events(self.principal, after_seq, limit)

    def verify_audit(self) -> list[str]:
        return self.governance.verify_audit(self.principal)

    # -- model registry ----------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        project: str | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
        exist_ok: bool = False,
    ) -> RegisteredModel:
        create = self.registry.get_or_create_model if exist_ok else self.registry.create_model
        return create(self.principal, name, project, description, tags)

    def get_model(self, name: str) -> RegisteredModel:
        return self.registry.get_model(self.principal, name)

    def update_model(
        self, name: str, description: str | None = None, tags: Mapping[str, object] | None = None
    ) -> RegisteredModel:
        return self.registry.update_model(self.principal, name, description, tags)

    def search_models(
        self,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]:
        return self.registry.search_models(self.principal, filter, order_by, max_results, page_token)

    def create_model_version(
        self,
        name: str,
        run_id: str,
        artifact_path: str,
        manifest_digest: str,
        flavor: str,
        signature: Mapping[str, Any] | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        return self.registry.create_version(
            self.principal, name, run_id, artifact_path, manifest_digest, flavor, signature, description, tags
        )

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return self.registry.get_version(self.principal, name, version)

    def update_model_version(
        self,
        name: str,
        version: int,
        status: str | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion:
        return self.registry.update_version(self.principal, name, version, status, description, tags)

    def search_model_versions(
        self,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        name: str | None = None,
    ) -> Page[ModelVersion]:
        return self.registry.search_versions(self.principal, filter, order_by, max_results, page_token, name)

    def set_model_alias(self, name: str, alias: str, version: int, reason: str | None = None) -> ModelVersion:
        return self.registry.set_alias(self.principal, name, alias, version, reason)

    def delete_model_alias(self, name: str, alias: str, reason: str | None = None) -> int:
        return self.registry.delete_alias(self.principal, name, alias, reason)

    def resolve_model_version(self, uri: str, alias_or_version: str | int | None = None) -> ModelVersion:
        return self.registry.resolve(self.principal, uri, alias_or_version)

    # -- pipelines ---------------------------------------------------------------------------------

    @cached_property
    def pipelines(self) -> PipelineService:
        from loopml.pipelines import PipelineService

        return PipelineService(self.store, self.artifacts, self.tracking.default_project)

    @cached_property
    def schedules(self) -> ScheduleService:
        from loopml.pipelines import ScheduleService

        return ScheduleService(self.store, self.tracking.default_project)

    # -- deployments -------------------------------------------------------------------------------

    @cached_property
    def deployments(self) -> DeployService:
        from loopml.deploy import DeployService  # reads the request log with pyarrow: imported on first use

        return DeployService(self.store, self.registry, self.request_log_dir)

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
        return self.deployments.deploy(
            self.principal,
            name,
            model,
            strategy,
            canary_steps,
            analysis_seconds,
            thresholds,
            sticky_key,
            ab_weight,
            reason,
        )

    def list_deployments(self) -> list[Deployment]:
        return self.deployments.list(self.principal)

    def get_deployment(self, name: str) -> Deployment:
        return self.deployments.status(self.principal, name)

    def rollback_deployment(self, name: str, reason: str | None = None) -> Deployment:
        return self.deployments.rollback(self.principal, name, reason)

    def promote_deployment(self, name: str, reason: str | None = None) -> Deployment:
        return self.deployments.promote(self.principal, name, reason)

    def deployment_history(self, name: str, limit: int = 100) -> list[DeploymentRevision]:
        return self.deployments.history(self.principal, name, limit)

    def deployment_decisions(self, name: str, limit: int = 100) -> list[RolloutDecision]:
        return self.deployments.decisions(self.principal, name, limit)

    def shadow_comparison(self, name: str, window_seconds: int = 3600, tolerance: float = 1e-6) -> dict[str, Any]:
        return self.deployments.shadow_comparison(self.principal, name, window_seconds, tolerance)

    # -- monitoring (the service imports pandas and scipy: built on first use) -----------------------

    @cached_property
    def monitoring(self) -> MonitoringService:
        from loopml.monitoring import MonitoringService

        return MonitoringService(self.store, self.artifacts, self.registry, request_log=self.request_log_dir)

    def set_reference_profile(self, name: str, version: int, profile: Mapping[str, Any]) -> None:
        self.monitoring.set_reference_profile(self.principal, name, version, profile)

    def get_reference_profile(self, name: str, version: int) -> dict[str, Any]:
        return self.monitoring.get_reference_profile(self.principal, name, version).to_dict()

    def create_monitor(
        self,
        name: str,
        deployment: str,
        window: str = "1d",
        label_delay: str = "0s",
        consecutive: int = 3,
        model: str | None = None,
        version: int | None = None,
        thresholds: Mapping[str, float] | None = None,
        webhook: str | None = None,
        kinds: Sequence[str] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Monitor:
        return self.monitoring.create_monitor(
            self.principal,
            name,
            deployment,
            window=window,
            label_delay=label_delay,
            consecutive=consecutive,
            model=model,
            version=version,
            thresholds=thresholds,
            webhook=webhook,
            kinds=kinds,
            options=options,
        )

    def list_monitors(self) -> list[Monitor]:
        return self.monitoring.list_monitors(self.principal)

    def get_monitor(self, name: str) -> Monitor:
        return self.monitoring.get_monitor(self.principal, name)

    def run_monitor(self, name: str, now: int | None = None) -> dict[str, Any]:
        return asdict(self.monitoring.run_monitor(self.principal, name, now))

    def backfill_monitor(
        self, name: str, requests: Sequence[Mapping[str, Any]], now: int | None = None
    ) -> dict[str, Any]:
        return asdict(self.monitoring.backfill(self.principal, name, requests, now))

    def monitor_windows(self, name: str, limit: int | None = None) -> list[MonitorWindow]:
        return self.monitoring.windows(self.principal, name, limit)

    def monitor_report(self, name: str) -> str:
        return self.monitoring.report_html(self.principal, name)

    def record_feedback(self, items: Sequence[Mapping[str, Any]]) -> int:
        return self.monitoring.record_feedback(self.principal, items)

    def list_alerts(self, monitor: str | None = None, state: str | None = None) -> list[Alert]:
        return self.monitoring.alerts(self.principal, monitor, state)

    def close(self) -> None:
        self.store.close()
