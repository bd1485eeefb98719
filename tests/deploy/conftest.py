"""A metadata store (both backends) with model `bike` at versions 1-3, a deploy service and a request log."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.artifacts import open_artifact_store
from loopml.deploy import DeployService
from loopml.domain import Principal, Role
from loopml.registry import RegistryService
from loopml.store import MetadataStore
from loopml.tracking import TrackingService

ADMIN = Principal("admin", Role.ADMIN, None)
EDITOR = Principal("ed", Role.EDITOR, None)
VIEWER = Principal("vi", Role.VIEWER, None)
OTHER = Principal("mallory", Role.EDITOR, "other")
MANIFEST = b'{"flavor": "sklearn", "files": {}}'
DIGEST = hashlib.sha256(MANIFEST).hexdigest()


class World:
    def __init__(self, store: MetadataStore, tmp_path: Path) -> None:
        self.store = store
        self.tracking = TrackingService(store, open_artifact_store((tmp_path / "blobs").as_uri()))
        self.registry = RegistryService(store)
        self.log_dir = tmp_path / "request-log"
        self.deploy = DeployService(store, self.registry, self.log_dir)

    def version(self, name: str = "bike") -> int:
        experiment = self.tracking.get_or_create_experiment(ADMIN, "e")
        run = self.tracking.create_run(ADMIN, experiment.id)
        self.tracking.log_artifact(ADMIN, run.id, "model/loopml-model.json", [MANIFEST])
        return self.registry.create_version(EDITOR, name, run.id, "model", DIGEST, "sklearn").version


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    store = MetadataStore.open(db_url)
    made = World(store, tmp_path)
    made.registry.create_model(EDITOR, "bike")
    for _ in range(3):
        made.version()
    made.registry.set_alias(EDITOR, "bike", "champion", 1)
    made.registry.set_alias(EDITOR, "bike", "challenger", 2)
    yield made
    store.close()
