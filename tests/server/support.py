"""Helpers of the server tests: an in-process API client bound to an app and its store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from loopml.artifacts import open_artifact_store
from loopml.governance import GovernanceService
from loopml.server import build_app
from loopml.settings import Settings
from loopml.store import MetadataStore
from loopml.tracking import TrackingService

__all__ = ["ADMIN_SECRET", "API", "Api", "TestClient", "make_app"]

ADMIN_SECRET = "lml_test_admin"
API = "/api/v1"


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    store: MetadataStore
    artifact_root: Path

    def headers(self, secret: str = ADMIN_SECRET) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    def token(self, role: str, project: str | None = None, name: str | None = None) -> str:
        """The secret of a new token with `role` (scoped to `project` when given)."""
        body = {"name": name or f"{role}-{project or 'all'}", "role": role, "project": project}
        response = self.client.post(f"{API}/tokens", json=body, headers=self.headers())
        assert response.status_code == 200, response.text
        secret: str = response.json()["secret"]
        return secret

    def experiment(self, name: str = "exp", project: str | None = None, secret: str = ADMIN_SECRET) -> int:
        response = self.client.post(
            f"{API}/experiments", json={"name": name, "project": project}, headers=self.headers(secret)
        )
        assert response.status_code == 200, response.text
        experiment_id: int = response.json()["experiment"]["id"]
        return experiment_id

    def run(self, experiment_id: int, secret: str = ADMIN_SECRET, **fields: object) -> dict[str, object]:
        response = self.client.post(
            f"{API}/runs", json={"experiment_id": experiment_id, **fields}, headers=self.headers(secret)
        )
        assert response.status_code == 200, response.text
        run: dict[str, object] = response.json()["run"]
        return run


def make_app(db_url: str, artifact_root: Path, **settings: object) -> tuple[FastAPI, MetadataStore]:
    store = MetadataStore.open(db_url)
    blobs = open_artifact_store(artifact_root.as_uri())
    governance = GovernanceService(store)
    governance.bootstrap_admin(ADMIN_SECRET)
    config = Settings(database_url=db_url, artifact_root=artifact_root.as_uri(), **settings)  # type: ignore[arg-type]
    return build_app(TrackingService(store, blobs), governance, config), store
