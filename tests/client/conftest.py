"""The conformance fixture: the same `Client` over the embedded backend and over HTTP to the server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import loopml
from loopml.artifacts import open_artifact_store
from loopml.client.local_backend import LocalBackend
from loopml.governance import GovernanceService
from loopml.server import build_app
from loopml.settings import Settings
from loopml.store import MetadataStore
from loopml.tracking import TrackingService

ADMIN = "lml_conformance_admin_secret"


@pytest.fixture(params=["local", "http"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[loopml.Client]:
    """A Client on a fresh store: in-process (`local`) or through the REST API (`http`)."""
    store = MetadataStore.open(f"sqlite:///{tmp_path / 'loopml.db'}")
    blobs = open_artifact_store((tmp_path / "artifacts").as_uri())
    if request.param == "local":
        made = loopml.Client(backend=LocalBackend(store, blobs), metric_flush_seconds=0.05)
        yield made
        made.close()
        return
    tracking, governance = TrackingService(store, blobs), GovernanceService(store)
    governance.bootstrap_admin(ADMIN)
    settings = Settings(home=tmp_path)
    with TestClient(build_app(tracking, governance, settings)) as http:
        made = loopml.Client(token=ADMIN, http_client=http, metric_flush_seconds=0.05)
        yield made
        made.close()
    store.close()
