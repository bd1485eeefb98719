"""The embedded backend: the services in this process, on the store under LOOPML_HOME. No token needed."""

from __future__ import annotations

import getpass
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from loopml.artifacts import ArtifactStore, open_artifact_store
from loopml.domain import (
    ArtifactRecord,
    AuditEvent,
    Dataset,
    DatasetInput,
    Experiment,
    Metric,
    Page,
    Principal,
    Role,
    Run,
    Token,
)
from loopml.errors import ArtifactCorrupted
from loopml.governance import GovernanceService
from loopml.settings import Settings
from loopml.store import MetadataStore
from loopml.tracking import TrackingService


def _local_actor() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"local:uid{os.getuid()}"


class LocalBackend:
    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, default_project: str = "default") -> None:
        self.store = store
        self.artifacts = artifacts
        self.tracking = TrackingService(store, artifacts, default_project)
        self.governance = GovernanceService(store)
        self.principal = Principal(actor=_local_actor(), role=Role.ADMIN, project=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        store = MetadataStore.open(settings.resolved_database_url())
        artifacts = open_artifact_store(settings.resolved_artifact_root(), settings.s3_endpoint_url)
        return cls(store, artifacts, settings.default_project)

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

    def log_metrics(self, run_id: str, points: Sequence[Metric]) -> int:
        return self.tracking.log_metrics(self.principal, run_id, points)

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

    def close(self) -> None:
        self.store.close()


def write_verified(chunks: object, digest: str, dest: Path) -> Path:
    """Write streamed `chunks` to `dest` through a temporary file, publishing only if the sha256 matches."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.partial")
    hasher = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for chunk in chunks:  # type: ignore[attr-defined]
                hasher.update(chunk)
                out.write(chunk)
        if hasher.hexdigest() != digest:
            raise ArtifactCorrupted(
                f"downloaded content of {dest.name} has sha256 {hasher.hexdigest()}, expected {digest}"
            )
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    return dest
