"""The one protocol both backends implement; the conformance suite in tests/client runs against each."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from loopml.domain import (
    ArtifactRecord,
    AuditEvent,
    Dataset,
    DatasetInput,
    Experiment,
    Metric,
    MetricColumns,
    ModelVersion,
    Page,
    RegisteredModel,
    Run,
    Token,
)


class Backend(Protocol):
    """Everything the SDK asks of a store: in-process (`LocalBackend`) or over HTTP (`HttpBackend`)."""

    def get_or_create_experiment(self, name: str, project: str | None = None) -> Experiment: ...
    def get_experiment(self, experiment_id: int) -> Experiment: ...
    def find_experiment(self, name: str, project: str | None = None) -> Experiment: ...
    def list_experiments(self, project: str | None = None) -> list[Experiment]: ...

    def create_run(
        self,
        experiment_id: int,
        name: str | None = None,
        parent_run_id: str | None = None,
        params: Mapping[str, object] | None = None,
        tags: Mapping[str, object] | None = None,
        start_time: int | None = None,
    ) -> Run: ...
    def get_run(self, run_id: str) -> Run: ...
    def end_run(self, run_id: str, status: str, end_time: int | None = None) -> Run: ...
    def log_params(self, run_id: str, params: Mapping[str, object]) -> None: ...
    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None: ...
    def log_metrics(self, run_id: str, batch: MetricColumns) -> int: ...
    def metric_history(self, run_id: str, key: str) -> list[Metric]: ...
    def log_dataset(self, run_id: str, data: DatasetInput) -> Dataset: ...
    def run_datasets(self, run_id: str) -> list[Dataset]: ...
    def log_artifact(self, run_id: str, path: str, local_file: Path) -> ArtifactRecord: ...
    def list_artifacts(self, run_id: str, prefix: str | None = None) -> list[ArtifactRecord]: ...
    def download_artifact(self, run_id: str, path: str, dest: Path) -> Path: ...
    def search_runs(
        self,
        experiment_ids: Sequence[int],
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[Run]: ...

    def create_token(self, name: str, role: str, project: str | None = None) -> tuple[Token, str]: ...
    def list_tokens(self) -> list[Token]: ...
    def revoke_token(self, token_id: str) -> Token: ...
    def audit_events(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEvent]: ...
    def verify_audit(self) -> list[str]: ...

    # -- model registry (loading, `log_model` and downloads build on these in the SDK) --------------
    def create_model(
        self,
        name: str,
        project: str | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
        exist_ok: bool = False,
    ) -> RegisteredModel: ...
    def get_model(self, name: str) -> RegisteredModel: ...
    def update_model(
        self, name: str, description: str | None = None, tags: Mapping[str, object] | None = None
    ) -> RegisteredModel: ...
    def search_models(
        self,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> Page[RegisteredModel]: ...
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
    ) -> ModelVersion: ...
    def get_model_version(self, name: str, version: int) -> ModelVersion: ...
    def update_model_version(
        self,
        name: str,
        version: int,
        status: str | None = None,
        description: str | None = None,
        tags: Mapping[str, object] | None = None,
    ) -> ModelVersion: ...
    def search_model_versions(
        self,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        name: str | None = None,
    ) -> Page[ModelVersion]: ...
    def set_model_alias(self, name: str, alias: str, version: int, reason: str | None = None) -> ModelVersion: ...
    def delete_model_alias(self, name: str, alias: str, reason: str | None = None) -> int: ...
    def resolve_model_version(self, uri: str, alias_or_version: str | int | None = None) -> ModelVersion: ...

    def close(self) -> None: ...
